"""The gRPC servicer of users, roles and tokens (tandemkv.v1.Auth).

Translation only: `node.auth` (server/node/auth.py) does the work and the
pure model (server/strong/auth.py) decides. Who may call what is the
Dispatcher's gate's (server/api/auth_calls.py): Authenticate and
AuthStatus are open, every other method needs the root role once auth is
enabled. Errors map through the edge's table: a bad name or password is
INVALID_ARGUMENT naming the limit, an unknown user or role NOT_FOUND, one
that exists ALREADY_EXISTS, enabling without a root user
FAILED_PRECONDITION, a wrong password UNAUTHENTICATED (one message for an
unknown user too).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import grpc

from tandemkv import errors
from tandemkv.server.api.auth_calls import AuthGate, certificate_cn, credentials
from tandemkv.server.api.edge import abort, node_timeout_s
from tandemkv.v1 import auth_pb2_grpc


class AuthServicer(auth_pb2_grpc.AuthServicer):
    def __init__(self, node, gate: AuthGate | None):
        self._node = node
        self._gate = gate  # the server's gate: who AuthStatus's credentials name

    def _auth(self):
        auth = getattr(self._node, "auth", None)
        if auth is None:
            raise errors.Unavailable("this node serves no auth store")
        return auth

    async def _call(self, context: grpc.aio.ServicerContext, call: Callable[..., Awaitable[Any]], **fields):
        try:
            return await call(timeout_s=node_timeout_s(context), **fields)
        except grpc.aio.AbortError:
            raise
        except Exception as error:  # noqa: BLE001 - every error becomes a status
            await abort(context, error)

    async def _change(self, context, kind: str, request, **fields):
        # The caller's request id (kept across its retries) makes the change exactly once.
        return await self._call(context, lambda **kw: self._auth().change_async(kind, **kw),
                                request_id=request.request_id, **fields)

    async def Authenticate(self, request, context):
        return await self._call(context, lambda **kw: self._auth().authenticate_async(
            request.user, request.password, **kw))

    async def UserAdd(self, request, context):
        return await self._change(context, "user_add", request, user=request.user, password=request.password)

    async def UserDelete(self, request, context):
        return await self._change(context, "user_delete", request, user=request.user)

    async def UserChangePassword(self, request, context):
        return await self._change(context, "user_password", request, user=request.user, password=request.password)

    async def UserGrantRole(self, request, context):
        return await self._change(context, "user_grant_role", request, user=request.user, role=request.role)

    async def UserRevokeRole(self, request, context):
        return await self._change(context, "user_revoke_role", request, user=request.user, role=request.role)

    async def UserList(self, request, context):
        return await self._call(context, lambda **kw: self._auth().users_async(**kw))

    async def RoleAdd(self, request, context):
        return await self._change(context, "role_add", request, role=request.role)

    async def RoleDelete(self, request, context):
        return await self._change(context, "role_delete", request, role=request.role)

    async def RoleGrantPermission(self, request, context):
        return await self._change(context, "role_grant_permission", request, role=request.role,
                                  permission=request.permission)

    async def RoleRevokePermission(self, request, context):
        return await self._change(context, "role_revoke_permission", request, role=request.role,
                                  permission=request.permission)

    async def RoleList(self, request, context):
        return await self._call(context, lambda **kw: self._auth().roles_async(**kw))

    async def AuthEnable(self, request, context):
        return await self._change(context, "enable", request)

    async def AuthDisable(self, request, context):
        return await self._change(context, "disable", request)

    async def AuthStatus(self, request, context):
        try:
            auth = self._auth()
            store = auth.state()
            caller = None
            if store.enabled and self._gate is not None:  # an open method: the gate did not ask
                caller = self._gate.caller(store, credentials(context.invocation_metadata()),
                                          certificate_cn(context))
            return auth.status(caller)
        except Exception as error:  # noqa: BLE001 - every error becomes a status
            await abort(context, error)
