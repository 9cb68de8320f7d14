// The articles' Go programs beside the lab's Python ones. CI and `make go-programs` build them offline in GOPATH
// mode from Debian's packages (lab_services/runtime/go_programs.py); with a Go toolchain and a module proxy,
// `go mod tidy && go build ./...` here builds them against the versions below.
module discoverylab

go 1.19

require (
	go.etcd.io/etcd/client/v3 v3.5.16
	google.golang.org/grpc v1.59.0
	google.golang.org/protobuf v1.33.0
)
