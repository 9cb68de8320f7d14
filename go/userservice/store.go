// Package userservice is the lab's user service (protos/lab/user/v1) in Go: the same users, errors and change log
// as the Python instances, so a caller cannot tell which language answered except by served_by.
package userservice

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// The same limits as the Python store (lab_services/service/store.py), so both refuse the same input.
const (
	maxName      = 200
	maxEmail     = 254
	maxRequestID = 128
	history      = 10000
)

var emailPattern = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)

// Kinds of change, named as UserEvent.Kind names them.
const (
	created = "CREATED"
	updated = "UPDATED"
	deleted = "DELETED"
)

type record struct {
	id, name, email string
	createdAt       time.Time
}

type change struct {
	sequence uint64
	kind     string
	user     record
}

// storeError carries the gRPC code a store failure becomes (see codes in service.go).
type storeError struct {
	kind    string // "invalid", "not_found", "exists", "out_of_range"
	message string
}

func (e *storeError) Error() string { return e.message }

func invalid(field, reason string) error {
	return &storeError{"invalid", field + ": " + reason}
}

// store holds one instance's users and its numbered change log; instances share nothing, as in Python.
type store struct {
	mu          sync.Mutex
	users       map[string]record
	order       []string
	log         []change
	sequence    uint64
	nextID      int
	done        map[string]record // request_id -> the user that request created
	subscribers map[chan change]struct{}
}

func newStore() *store {
	return &store{users: map[string]record{}, done: map[string]record{}, subscribers: map[chan change]struct{}{}}
}

func validate(name, email string) error {
	switch {
	case len(name) > maxName:
		return invalid("name", fmt.Sprintf("must be at most %d characters, got %d", maxName, len(name)))
	case strings.TrimSpace(name) == "":
		return invalid("name", "must not be empty")
	case len(email) > maxEmail:
		return invalid("email", fmt.Sprintf("must be at most %d characters, got %d", maxEmail, len(email)))
	case !emailPattern.MatchString(email):
		return invalid("email", fmt.Sprintf("'%s' is not a valid address", email))
	}
	return nil
}

func (s *store) create(name, email, requestID string) (record, error) {
	if err := validate(name, email); err != nil {
		return record{}, err
	}
	if len(requestID) > maxRequestID {
		return record{}, invalid("request_id", fmt.Sprintf("is %d characters long; at most %d", len(requestID), maxRequestID))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if user, ok := s.done[requestID]; ok && requestID != "" {
		return user, nil
	}
	if err := s.emailFree(email, ""); err != nil {
		return record{}, err
	}
	s.nextID++
	user := record{fmt.Sprintf("u-%d", s.nextID), name, email, time.Now()}
	s.users[user.id] = user
	s.order = append(s.order, user.id)
	s.record(created, user)
	if requestID != "" {
		s.done[requestID] = user
	}
	return user, nil
}

func (s *store) update(id, name, email string) (record, error) {
	if err := validate(name, email); err != nil {
		return record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.get(id)
	if err != nil {
		return record{}, err
	}
	if err := s.emailFree(email, id); err != nil {
		return record{}, err
	}
	user := record{id, name, email, old.createdAt}
	s.users[id] = user
	s.record(updated, user)
	return user, nil
}

func (s *store) find(id string) (record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(id)
}

func (s *store) remove(id string) (record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	user, err := s.get(id)
	if err != nil {
		return record{}, err
	}
	delete(s.users, id)
	for i, other := range s.order {
		if other == id {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
	s.record(deleted, user)
	return user, nil
}

// list returns every user, oldest first.
func (s *store) list() []record {
	s.mu.Lock()
	defer s.mu.Unlock()
	users := make([]record, 0, len(s.order))
	for _, id := range s.order {
		users = append(users, s.users[id])
	}
	return users
}

// subscribe returns the retained changes after `since` (none when since is nil) and a channel of the changes that
// follow; both are taken under one lock, so no change falls between replay and live delivery.
func (s *store) subscribe(since *uint64) ([]change, chan change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var backlog []change
	if since != nil {
		oldest := s.sequence + 1
		if len(s.log) > 0 {
			oldest = s.log[0].sequence
		}
		switch {
		case *since > s.sequence:
			return nil, nil, &storeError{"out_of_range", fmt.Sprintf("since_sequence %d is ahead of this store's "+
				"latest change %d (another instance, or this one restarted); list the users again and watch "+
				"without since_sequence", *since, s.sequence)}
		case *since+1 < oldest:
			return nil, nil, &storeError{"out_of_range", fmt.Sprintf("since_sequence %d is too old: the oldest "+
				"retained change is %d; list the users again and watch without since_sequence", *since, oldest)}
		}
		for _, c := range s.log {
			if c.sequence > *since {
				backlog = append(backlog, c)
			}
		}
	}
	updates := make(chan change, 256)
	s.subscribers[updates] = struct{}{}
	return backlog, updates, nil
}

func (s *store) unsubscribe(updates chan change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.subscribers, updates)
}

func (s *store) get(id string) (record, error) {
	user, ok := s.users[id]
	if !ok {
		return record{}, &storeError{"not_found", fmt.Sprintf("user '%s' not found", id)}
	}
	return user, nil
}

func (s *store) emailFree(email, owner string) error {
	for _, user := range s.users {
		if strings.EqualFold(user.email, email) && user.id != owner {
			return &storeError{"exists", fmt.Sprintf("email: '%s' is already used by user '%s'", email, user.id)}
		}
	}
	return nil
}

// record appends a change and hands it to every watcher; a watcher too slow to keep 256 changes queued loses
// its stream rather than holding up every writer. The caller holds the lock.
func (s *store) record(kind string, user record) {
	s.sequence++
	c := change{s.sequence, kind, user}
	s.log = append(s.log, c)
	if len(s.log) > history {
		s.log = s.log[len(s.log)-history:]
	}
	for updates := range s.subscribers {
		select {
		case updates <- c:
		default:
			delete(s.subscribers, updates)
			close(updates)
		}
	}
}
