// Command user-client calls the user service through gRPC's own name resolution, the way article 004's client
// does: a resolver.Builder watching an etcd prefix hands gRPC every instance, and round_robin spreads the calls.
// It prints one JSON line per resolver update and per call, then a summary, and exits 1 if any call failed.
//
//	user-client -etcd 127.0.0.1:2379 -prefix /services/user/ -calls 9
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"

	"discoverylab/etcdresolver"
	pb "discoverylab/userpb"
)

func main() {
	endpoints := flag.String("etcd", "127.0.0.1:2379", "etcd endpoints, comma-separated")
	prefix := flag.String("prefix", "/services/user/", "the key prefix to watch; every key under it is one instance")
	calls := flag.Int("calls", 9, "how many CreateUser calls to make")
	expect := flag.Int("expect", 1, "wait until at least this many instances are resolved before calling")
	wait := flag.Duration("wait", 10*time.Second, "how long to wait for them")
	flag.Parse()
	if *calls < 1 || *expect < 1 || !strings.HasSuffix(*prefix, "/") {
		fail("invalid argument: -calls and -expect must be >= 1 and -prefix must end with '/' (got %d, %d, %q)",
			*calls, *expect, *prefix)
	}

	client, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(*endpoints, ","), DialTimeout: 5 * time.Second})
	if err != nil {
		fail("etcd at %s: %v", *endpoints, err)
	}
	defer client.Close()
	enough := make(chan struct{})
	builder := etcdresolver.NewBuilder(client, *prefix)
	builder.OnUpdate = func(addresses []string) {
		emit(map[string]interface{}{"event": "resolved", "addresses": addresses})
		if len(addresses) >= *expect {
			select {
			case <-enough:
			default:
				close(enough)
			}
		}
	}
	resolver.Register(builder)

	conn, err := grpc.Dial(etcdresolver.Scheme+":///user", grpc.WithInsecure(),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	if err != nil {
		fail("dial: %v", err)
	}
	defer conn.Close()
	select {
	case <-enough:
	case <-time.After(*wait):
		fail("fewer than %d instances under %s after %s", *expect, *prefix, *wait)
	}
	waitReady(conn, *wait)

	stub := pb.NewUserServiceClient(conn)
	servedBy := map[string]int{}
	failed := 0
	for i := 1; i <= *calls; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		email := fmt.Sprintf("go-client-%d-%d@example.com", time.Now().UnixNano(), i)
		user, err := stub.CreateUser(ctx, &pb.CreateUserRequest{Name: "Go client", Email: email})
		cancel()
		if err != nil {
			failed++
			emit(map[string]interface{}{"event": "call", "n": i, "code": status.Code(err).String(), "error": err.Error()})
			continue
		}
		servedBy[user.GetServedBy()]++
		emit(map[string]interface{}{"event": "call", "n": i, "code": "OK", "served_by": user.GetServedBy()})
	}
	emit(map[string]interface{}{"event": "summary", "calls": *calls, "failed": failed, "served_by": servedBy})
	if failed > 0 {
		os.Exit(1)
	}
}

// waitReady waits until round_robin has connected every resolved instance it can within `limit`, so the first
// calls are spread over all of them rather than over the first to connect.
func waitReady(conn *grpc.ClientConn, limit time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for state := conn.GetState(); state != connectivity.Ready; state = conn.GetState() {
		if !conn.WaitForStateChange(ctx, state) {
			return
		}
	}
	time.Sleep(200 * time.Millisecond)
}

func emit(fields map[string]interface{}) {
	line, _ := json.Marshal(fields)
	fmt.Println(string(line))
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "user-client: "+format+"\n", args...)
	os.Exit(2)
}
