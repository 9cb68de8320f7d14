import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class User(_message.Message):
    __slots__ = ("id", "name", "email", "created_at", "served_by")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    email: str
    created_at: _timestamp_pb2.Timestamp
    served_by: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., email: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., served_by: _Optional[str] = ...) -> None: ...

class CreateUserRequest(_message.Message):
    __slots__ = ("name", "email", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    email: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., email: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class UpdateUserRequest(_message.Message):
    __slots__ = ("id", "name", "email")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    email: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class DeleteUserRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListUsersRequest(_message.Message):
    __slots__ = ("limit", "interval_ms")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    limit: int
    interval_ms: int
    def __init__(self, limit: _Optional[int] = ..., interval_ms: _Optional[int] = ...) -> None: ...

class WatchUsersRequest(_message.Message):
    __slots__ = ("since_sequence",)
    SINCE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    since_sequence: int
    def __init__(self, since_sequence: _Optional[int] = ...) -> None: ...

class UserEvent(_message.Message):
    __slots__ = ("sequence", "kind", "user", "served_by")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[UserEvent.Kind]
        CREATED: _ClassVar[UserEvent.Kind]
        UPDATED: _ClassVar[UserEvent.Kind]
        DELETED: _ClassVar[UserEvent.Kind]
    KIND_UNSPECIFIED: UserEvent.Kind
    CREATED: UserEvent.Kind
    UPDATED: UserEvent.Kind
    DELETED: UserEvent.Kind
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    kind: UserEvent.Kind
    user: User
    served_by: str
    def __init__(self, sequence: _Optional[int] = ..., kind: _Optional[_Union[UserEvent.Kind, str]] = ..., user: _Optional[_Union[User, _Mapping]] = ..., served_by: _Optional[str] = ...) -> None: ...

class ImportSummary(_message.Message):
    __slots__ = ("imported", "rejected", "served_by")
    class Rejection(_message.Message):
        __slots__ = ("index", "reason")
        INDEX_FIELD_NUMBER: _ClassVar[int]
        REASON_FIELD_NUMBER: _ClassVar[int]
        index: int
        reason: str
        def __init__(self, index: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    imported: int
    rejected: _containers.RepeatedCompositeFieldContainer[ImportSummary.Rejection]
    served_by: str
    def __init__(self, imported: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[ImportSummary.Rejection, _Mapping]]] = ..., served_by: _Optional[str] = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ("sender", "text", "served_by")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    sender: str
    text: str
    served_by: str
    def __init__(self, sender: _Optional[str] = ..., text: _Optional[str] = ..., served_by: _Optional[str] = ...) -> None: ...
