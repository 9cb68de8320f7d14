package userservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "discoverylab/userpb"
)

// ServedByHeader is the initial metadata every response carries, as the Python instances send it.
const ServedByHeader = "x-served-by"

var statusCodes = map[string]codes.Code{
	"invalid":      codes.InvalidArgument,
	"not_found":    codes.NotFound,
	"exists":       codes.AlreadyExists,
	"out_of_range": codes.OutOfRange,
}

// Server implements lab.user.v1.UserService over one instance's store.
type Server struct {
	pb.UnimplementedUserServiceServer
	id    string
	store *store
}

// New returns the service of the instance `id` (what every response's served_by says).
func New(id string) *Server {
	return &Server{id: id, store: newStore()}
}

// Interceptors send x-served-by before any response, so a caller can count calls per instance even when one fails.
func (s *Server) Interceptors() []grpc.ServerOption {
	header := metadata.Pairs(ServedByHeader, s.id)
	return []grpc.ServerOption{
		grpc.UnaryInterceptor(func(ctx context.Context, req interface{}, _ *grpc.UnaryServerInfo,
			handler grpc.UnaryHandler) (interface{}, error) {
			_ = grpc.SetHeader(ctx, header)
			return handler(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv interface{}, ss grpc.ServerStream, _ *grpc.StreamServerInfo,
			handler grpc.StreamHandler) error {
			_ = ss.SetHeader(header)
			return handler(srv, ss)
		}),
	}
}

func (s *Server) CreateUser(_ context.Context, req *pb.CreateUserRequest) (*pb.User, error) {
	return s.answer(s.store.create(req.GetName(), req.GetEmail(), req.GetRequestId()))
}

func (s *Server) GetUser(_ context.Context, req *pb.GetUserRequest) (*pb.User, error) {
	return s.answer(s.store.find(req.GetId()))
}

func (s *Server) UpdateUser(_ context.Context, req *pb.UpdateUserRequest) (*pb.User, error) {
	return s.answer(s.store.update(req.GetId(), req.GetName(), req.GetEmail()))
}

func (s *Server) DeleteUser(_ context.Context, req *pb.DeleteUserRequest) (*pb.User, error) {
	return s.answer(s.store.remove(req.GetId()))
}

func (s *Server) ListUsers(req *pb.ListUsersRequest, stream pb.UserService_ListUsersServer) error {
	users := s.store.list()
	if limit := int(req.GetLimit()); limit > 0 && limit < len(users) {
		users = users[:limit]
	}
	pause := time.Duration(req.GetIntervalMs()) * time.Millisecond
	for i, user := range users {
		if i > 0 && pause > 0 {
			select {
			case <-stream.Context().Done():
				return status.FromContextError(stream.Context().Err()).Err()
			case <-time.After(pause):
			}
		}
		if err := stream.Send(s.user(user)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) WatchUsers(req *pb.WatchUsersRequest, stream pb.UserService_WatchUsersServer) error {
	backlog, updates, err := s.store.subscribe(req.SinceSequence)
	if err != nil {
		return asStatus(err)
	}
	defer s.store.unsubscribe(updates)
	var last uint64 // the last sequence sent, so a watcher that fell behind knows where to resume
	for _, c := range backlog {
		if err := stream.Send(s.event(c)); err != nil {
			return err
		}
		last = c.sequence
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case c, open := <-updates:
			if !open {
				return status.Error(codes.ResourceExhausted, fmt.Sprintf(
					"watcher fell behind; reconnect with since_sequence=%d", last))
			}
			if err := stream.Send(s.event(c)); err != nil {
				return err
			}
			last = c.sequence
		}
	}
}

func (s *Server) ImportUsers(stream pb.UserService_ImportUsersServer) error {
	summary := &pb.ImportSummary{ServedBy: s.id}
	for index := uint32(0); ; index++ {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(summary)
		}
		if err != nil {
			return err
		}
		if _, err := s.store.create(req.GetName(), req.GetEmail(), ""); err != nil {
			summary.Rejected = append(summary.Rejected, &pb.ImportSummary_Rejection{Index: index, Reason: err.Error()})
		} else {
			summary.Imported++
		}
	}
}

func (s *Server) Chat(stream pb.UserService_ChatServer) error {
	for count := 1; ; count++ {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		sender := msg.GetSender()
		if sender == "" {
			sender = "anonymous"
		}
		reply := &pb.ChatMessage{Sender: s.id, Text: fmt.Sprintf("#%d %s said: %s", count, sender, msg.GetText()),
			ServedBy: s.id}
		if err := stream.Send(reply); err != nil {
			return err
		}
	}
}

func (s *Server) answer(user record, err error) (*pb.User, error) {
	if err != nil {
		return nil, asStatus(err)
	}
	return s.user(user), nil
}

func asStatus(err error) error {
	var failure *storeError
	if errors.As(err, &failure) {
		return status.Error(statusCodes[failure.kind], failure.message)
	}
	return err
}

func (s *Server) user(u record) *pb.User {
	return &pb.User{Id: u.id, Name: u.name, Email: u.email, CreatedAt: timestamppb.New(u.createdAt), ServedBy: s.id}
}

func (s *Server) event(c change) *pb.UserEvent {
	return &pb.UserEvent{Sequence: c.sequence, Kind: pb.UserEvent_Kind(pb.UserEvent_Kind_value[c.kind]),
		User: s.user(c.user), ServedBy: s.id}
}
