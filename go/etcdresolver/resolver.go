// Package etcdresolver is a gRPC resolver.Builder that watches an etcd prefix, as article 004's client does: read
// the instances under the prefix, then follow puts and deletes, and hand gRPC the addresses on every change.
//
//	resolver.Register(etcdresolver.NewBuilder(client, "/services/user/"))
//	conn, _ := grpc.Dial("etcd:///user", grpc.WithInsecure(),
//		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
package etcdresolver

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/resolver"
)

// Scheme is the target scheme this builder answers: grpc.Dial("etcd:///user").
const Scheme = "etcd"

// Builder makes resolvers that watch one key prefix; each key under it is one instance.
type Builder struct {
	client *clientv3.Client
	prefix string
	// OnUpdate, if set, hears every address list handed to gRPC (the client prints it).
	OnUpdate func(addresses []string)
}

// NewBuilder watches `prefix` (with its trailing slash, so /services/user/ does not match /services/users/).
func NewBuilder(client *clientv3.Client, prefix string) *Builder {
	return &Builder{client: client, prefix: prefix}
}

func (b *Builder) Scheme() string { return Scheme }

func (b *Builder) Build(_ resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &etcdResolver{builder: b, cc: cc, cancel: cancel, addresses: map[string]string{}, reported: map[string]string{}}
	resp, err := b.client.Get(ctx, b.prefix, clientv3.WithPrefix())
	if err != nil {
		cancel()
		return nil, fmt.Errorf("etcd: reading %s: %w", b.prefix, err)
	}
	for _, kv := range resp.Kvs {
		r.put(string(kv.Key), string(kv.Value))
	}
	r.update()
	// Watching from the revision after the read delivers every later change exactly once.
	watch := b.client.Watch(ctx, b.prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	go r.follow(watch)
	return r, nil
}

type etcdResolver struct {
	builder   *Builder
	cc        resolver.ClientConn
	cancel    context.CancelFunc
	mu        sync.Mutex
	addresses map[string]string // key -> address
	reported  map[string]string // key -> why it could not be read, logged once per key
}

func (r *etcdResolver) follow(watch clientv3.WatchChan) {
	for resp := range watch {
		if err := resp.Err(); err != nil {
			log.Printf("etcd resolver: watch on %s: %v", r.builder.prefix, err)
			continue
		}
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypeDelete {
				r.mu.Lock()
				delete(r.addresses, string(ev.Kv.Key))
				delete(r.reported, string(ev.Kv.Key))
				r.mu.Unlock()
			} else {
				r.put(string(ev.Kv.Key), string(ev.Kv.Value))
			}
		}
		r.update()
	}
}

func (r *etcdResolver) put(key, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	address, err := AddressOf(key, value)
	if err != nil {
		delete(r.addresses, key)
		if r.reported[key] != err.Error() {
			r.reported[key] = err.Error()
			log.Printf("etcd resolver: skipping %s: %v", key, err)
		}
		return
	}
	delete(r.reported, key)
	r.addresses[key] = address
}

func (r *etcdResolver) update() {
	r.mu.Lock()
	seen := map[string]bool{}
	var list []string
	for _, address := range r.addresses {
		if !seen[address] {
			seen[address] = true
			list = append(list, address)
		}
	}
	r.mu.Unlock()
	sort.Strings(list)
	state := resolver.State{}
	for _, address := range list {
		state.Addresses = append(state.Addresses, resolver.Address{Addr: address})
	}
	r.cc.UpdateState(state) // grpc 1.33 returns nothing here, later versions an error that only says "no addresses"
	if r.builder.OnUpdate != nil {
		r.builder.OnUpdate(list)
	}
}

// ResolveNow has nothing to do: the watch already delivers every change as it happens.
func (r *etcdResolver) ResolveNow(resolver.ResolveNowOptions) {}

func (r *etcdResolver) Close() { r.cancel() }

// AddressOf reads the address of one instance key in any layout the lab meets: the articles' (the address is the
// value as text, or the key's last segment when the value is empty), etcd's naming format ({"Op":0,"Addr":...}),
// and the lab's own JSON ({"address": "127.0.0.1:5001", ...}), so this client calls the Python instances too.
func AddressOf(key, value string) (string, error) {
	value = strings.TrimSpace(value)
	address := value
	if strings.HasPrefix(value, "{") {
		var fields struct {
			Op      *int    `json:"Op"`
			Addr    *string `json:"Addr"`
			Address *string `json:"address"`
		}
		if err := json.Unmarshal([]byte(value), &fields); err != nil {
			return "", fmt.Errorf("value is not JSON: %v", err)
		}
		switch {
		case fields.Addr != nil && fields.Op != nil && *fields.Op != 0:
			return "", fmt.Errorf("etcd naming update with Op %d, not 0 (Add)", *fields.Op)
		case fields.Addr != nil:
			address = *fields.Addr
		case fields.Address != nil:
			address = *fields.Address
		default:
			return "", fmt.Errorf("JSON with neither the lab's \"address\" nor etcd naming's \"Addr\"")
		}
	} else if value == "" {
		address = key[strings.LastIndex(strings.TrimSuffix(key, "/"), "/")+1:]
	}
	host, port, err := net.SplitHostPort(address)
	if number, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || number < 1 || number > 65535 {
		return "", fmt.Errorf("%q is not host:port with a port from 1 to 65535", address)
	}
	return address, nil
}
