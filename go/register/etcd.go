// Package register puts a service instance in etcd or Consul the way the articles do it, and takes it out again.
package register

import (
	"context"
	"fmt"
	"log"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// EtcdLease is one instance's key under a lease kept alive by etcd's own KeepAlive stream.
type EtcdLease struct {
	client *clientv3.Client
	lease  clientv3.LeaseID
	Key    string
}

// Etcd grants a lease of ttl seconds, puts key -> value under it and keeps the lease alive, as article 004 does:
//
//	/services/user/127.0.0.1:8080 -> ""   (or the address as text, as article 001 writes it)
//
// If the process dies the keepalives stop, etcd deletes the key when the lease runs out, and every watcher of the
// prefix sees the instance leave. `lost` is closed if the lease ends while the process lives (etcd lost it).
func Etcd(endpoints []string, key, value string, ttl int64) (*EtcdLease, <-chan struct{}, error) {
	client, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, nil, fmt.Errorf("etcd at %v: %w", endpoints, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	grant, err := client.Grant(ctx, ttl)
	if err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("etcd at %v: granting a %d s lease: %w", endpoints, ttl, err)
	}
	if _, err := client.Put(ctx, key, value, clientv3.WithLease(grant.ID)); err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("etcd at %v: putting %s: %w", endpoints, key, err)
	}
	alive, err := client.KeepAlive(context.Background(), grant.ID)
	if err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("etcd at %v: keeping lease %x alive: %w", endpoints, grant.ID, err)
	}
	lost := make(chan struct{})
	go func() {
		// The responses must be read, or the client logs that the channel is full; the channel closes when the
		// lease is gone or the client stops.
		for range alive {
		}
		log.Printf("etcd: keepalive of lease %x for %s ended", grant.ID, key)
		close(lost)
	}()
	return &EtcdLease{client: client, lease: grant.ID, Key: key}, lost, nil
}

// Close revokes the lease, which deletes the key at once, and closes the client.
func (e *EtcdLease) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := e.client.Revoke(ctx, e.lease)
	e.client.Close()
	return err
}
