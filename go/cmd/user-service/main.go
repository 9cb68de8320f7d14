// Command user-service serves the lab's user service and registers itself the way the articles do: in etcd under a
// 10 s lease kept alive by KeepAlive, or in Consul with a gRPC health check against grpc.health.v1.
//
//	user-service -port 8080 -registry etcd -etcd 127.0.0.1:2379      # /services/user/127.0.0.1:8080 -> ""
//	user-service -port 8080 -registry consul -consul 127.0.0.1:8500  # check: GRPC 127.0.0.1:8080 every 1s
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"discoverylab/register"
	pb "discoverylab/userpb"
	"discoverylab/userservice"
)

type options struct {
	host, labNet, id, name, registry, etcd, prefix, value, consul, interval, tags string
	port                                                                          int
	lease                                                                         int64
}

// labAddress: an IPv4 loopback address, or one in the lab's own container network when it is given.
func labAddress(host, labNet string) bool {
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	_, subnet, err := net.ParseCIDR(labNet)
	return err == nil && subnet.Contains(ip)
}

func parse() options {
	var o options
	flag.StringVar(&o.host, "host", "127.0.0.1", "address to listen on and to register (the lab stays on 127.0.0.0/8)")
	flag.StringVar(&o.labNet, "lab-net", "", "the lab's own container network (CIDR), allowed besides loopback")
	flag.IntVar(&o.port, "port", 0, "port to listen on (required)")
	flag.StringVar(&o.id, "id", "", "instance id, sent as served_by (default go-<port>)")
	flag.StringVar(&o.name, "name", "user", "service name to register")
	flag.StringVar(&o.registry, "registry", "etcd", "where to register: etcd, consul or none")
	flag.StringVar(&o.etcd, "etcd", "127.0.0.1:2379", "etcd endpoints, comma-separated")
	flag.StringVar(&o.prefix, "prefix", "/services", "etcd key prefix: the key is <prefix>/<name>/<host:port>")
	flag.Int64Var(&o.lease, "lease", 10, "etcd lease TTL in seconds")
	flag.StringVar(&o.value, "value", "empty", "etcd value: empty (article 004) or address (article 001)")
	flag.StringVar(&o.consul, "consul", "127.0.0.1:8500", "Consul agent HTTP address")
	flag.StringVar(&o.interval, "check-interval", "1s", "Consul gRPC check interval")
	flag.StringVar(&o.tags, "tags", "go", "Consul tags, comma-separated")
	flag.Parse()
	if o.port < 1 || o.port > 65535 {
		fail("invalid argument: -port %d; give the port to listen on, 1-65535", o.port)
	}
	if !labAddress(o.host, o.labNet) {
		fail("invalid argument: -host %q; the lab listens only on 127.0.0.0/8 (e.g. 127.0.0.1) or its own -lab-net", o.host)
	}
	if o.registry != "etcd" && o.registry != "consul" && o.registry != "none" {
		fail("invalid argument: -registry %q; use etcd, consul or none", o.registry)
	}
	if o.value != "empty" && o.value != "address" {
		fail("invalid argument: -value %q; use empty or address", o.value)
	}
	if o.lease < 2 {
		fail("invalid argument: -lease %d; etcd's minimum TTL is 2 seconds", o.lease)
	}
	if o.id == "" {
		o.id = fmt.Sprintf("go-%d", o.port)
	}
	return o
}

func main() {
	o := parse()
	address := net.JoinHostPort(o.host, fmt.Sprint(o.port))
	listener, err := net.Listen("tcp", address)
	if err != nil {
		fail("cannot listen on %s: %v", address, err)
	}
	users := userservice.New(o.id)
	server := grpc.NewServer(users.Interceptors()...)
	pb.RegisterUserServiceServer(server, users)
	healthServer := health.NewServer()
	healthpb.RegisterHealthServer(server, healthServer)
	healthServer.SetServingStatus("lab.user.v1.UserService", healthpb.HealthCheckResponse_SERVING)
	reflection.Register(server)
	go func() {
		if err := server.Serve(listener); err != nil {
			fail("serving on %s: %v", address, err)
		}
	}()

	// Register only once the server answers, so the first health check (or the first caller) finds it ready.
	deregister, where := registerInstance(o, address)
	announce(map[string]string{"event": "serving", "id": o.id, "address": address, "registry": o.registry,
		"registered": where})

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	// Leave the registry first, then stop taking calls: callers move on before the port closes.
	healthServer.Shutdown()
	deregister()
	done := make(chan struct{})
	go func() { server.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		server.Stop()
	}
}

// registerInstance registers in the chosen registry; it returns how to deregister and what was registered.
func registerInstance(o options, address string) (func(), string) {
	switch o.registry {
	case "etcd":
		key := fmt.Sprintf("%s/%s/%s", strings.TrimRight(o.prefix, "/"), o.name, address)
		value := ""
		if o.value == "address" {
			value = address
		}
		lease := keepRegistered(strings.Split(o.etcd, ","), key, value, o.lease)
		return func() { _ = (<-lease).Close() }, key
	case "consul":
		agent := register.NewConsul(o.consul)
		reg := &register.AgentServiceRegistration{
			ID: o.id, Name: o.name, Address: o.host, Port: o.port, Tags: strings.Split(o.tags, ","),
			Meta: map[string]string{"lang": "go"},
			Check: &register.AgentServiceCheck{
				GRPC: address, Interval: o.interval, Timeout: "1s", DeregisterCriticalServiceAfter: "1m",
			},
		}
		if err := agent.ServiceRegister(reg); err != nil {
			fail("registering %s: %v", o.id, err)
		}
		return func() { _ = agent.ServiceDeregister(o.id) }, o.id
	}
	return func() {}, ""
}

// keepRegistered registers in etcd and, if etcd ever loses the lease while this process lives (the member lost
// its data, or keepalives could not reach it for a whole TTL), grants a new one and puts the key again. The
// channel always holds the current lease, for deregistering.
func keepRegistered(endpoints []string, key, value string, ttl int64) chan *register.EtcdLease {
	lease, lost, err := register.Etcd(endpoints, key, value, ttl)
	if err != nil {
		fail("%v", err)
	}
	current := make(chan *register.EtcdLease, 1)
	current <- lease
	go func() {
		for {
			<-lost
			old := <-current
			_ = old.Close()
			for {
				lease, lost, err = register.Etcd(endpoints, key, value, ttl)
				if err == nil {
					break
				}
				log.Printf("registering again: %v", err)
				time.Sleep(time.Second)
			}
			current <- lease
		}
	}()
	return current
}

// announce prints one JSON line on stdout, which the lab's runtime and a learner's terminal both read.
func announce(fields map[string]string) {
	line, _ := json.Marshal(fields)
	fmt.Println(string(line))
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "user-service: "+format+"\n", args...)
	os.Exit(2)
}
