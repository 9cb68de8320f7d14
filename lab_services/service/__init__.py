"""The lab's sample user service: run it in-process with UserServer, or as `python -m lab_services.service`.

from lab_services.service import UserServer, AdminClient, user_pb2, user_pb2_grpc
"""

from lab_services._proto.lab.user.v1 import user_service_pb2 as user_pb2
from lab_services._proto.lab.user.v1 import user_service_pb2_grpc as user_pb2_grpc
from lab_services.service.admin import AdminClient
from lab_services.service.interceptors import SERVED_BY_HEADER
from lab_services.service.server import UserServer
from lab_services.service.servicer import SERVICE_NAME

__all__ = ["SERVED_BY_HEADER", "SERVICE_NAME", "AdminClient", "UserServer", "user_pb2", "user_pb2_grpc"]
