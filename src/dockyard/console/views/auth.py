"""Signing in, signing up and signing out."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dockyard.api import SECURITY_TOKEN_HEADER
from dockyard.console.client import ApiProblem, SessionExpired
from dockyard.console.core import PREFIX, Console, read_form, safe_next
from dockyard.console.session import (
    SESSION_COOKIE,
    clear_flash,
    clear_session,
    csrf_ok,
    read_flash,
    set_flash,
    set_session,
)
from dockyard.iam.sts import is_sts_key


def routes(console: Console) -> list[Route]:
    pages = AuthPages(console)
    return [
        Route(f"{PREFIX}/sign-in", pages.sign_in, methods=["GET", "POST"]),
        Route(f"{PREFIX}/sign-up", pages.sign_up, methods=["GET", "POST"]),
        Route(f"{PREFIX}/sign-out", pages.sign_out, methods=["POST"]),
    ]


class AuthPages:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def show(
        self, request: Request, template: str, status: int = 200, **values: Any
    ) -> Response:
        api = self.console.client(request, None)
        try:
            instance = await self.console.instance(api, request)
        finally:
            await api.aclose()
        flash = read_flash(request)
        response = self.console.render(
            request, template, status, ctx=None, instance=instance, flash=flash, **values
        )
        if flash is not None:
            clear_flash(response, request)
        return response

    async def signed_in(
        self, request: Request, username: str, password: str, security_token: str = ""
    ) -> Response:
        """Sign in through the API's login: a password, an access key, or STS
        credentials, whose SecurityToken goes where the API takes it (the
        ``X-Dockyard-Security-Token`` header); the session lasts as long as they do."""
        api = self.console.client(request, None)
        headers = {SECURITY_TOKEN_HEADER: security_token} if security_token else None
        try:
            session = await api.call(
                "POST",
                "/api/v1/auth/login",
                json={"username": username, "password": password},
                headers=headers,
            )
        finally:
            await api.aclose()
        response = RedirectResponse(safe_next(request.query_params.get("next")), 303)
        set_session(response, request, session["token"], _seconds_until(session["expires_at"]))
        return response

    async def sign_in(self, request: Request) -> Response:
        target = safe_next(request.query_params.get("next"))
        if request.method == "GET":
            return await self.show(
                request, "sign_in.html", username="", error=None, next=target, security_token=""
            )
        if not self.console.same_origin(request):
            return await self.show(
                request,
                "sign_in.html",
                403,
                username="",
                next=target,
                security_token="",
                error="The form came from another site and was refused.",
            )
        form = await read_form(request)
        username = form.get("username", "").strip()
        password = form.get("password", "")
        token = form.get("security_token", "").strip()
        again = partial(
            self.show, request, "sign_in.html", username=username, next=target, security_token=token
        )
        if not username or not password:
            return await again(400, error="Enter your login name and your password.")
        if is_sts_key(username) and not token:
            return await again(
                400, error="STS credentials need their security token: enter it under them."
            )
        try:
            return await self.signed_in(request, username, password, token)
        except ApiProblem as exc:
            return await again(exc.status, error=_sign_in_message(exc))

    async def sign_up(self, request: Request) -> Response:
        api = self.console.client(request, None)
        try:
            instance = await self.console.instance(api, request)
        finally:
            await api.aclose()
        if not instance.get("signup_enabled") or not self.console.has("/api/v1/signup", "POST"):
            response = RedirectResponse(f"{PREFIX}/sign-in", 303)
            set_flash(response, request, "This instance does not accept sign-ups.", "info")
            return response
        if request.method == "GET":
            return await self.show(request, "sign_up.html", name="", errors={})
        if not self.console.same_origin(request):
            return await self.show(
                request,
                "sign_up.html",
                403,
                name="",
                errors={"form": "The form came from another site and was refused."},
            )
        form = await read_form(request)
        name = form.get("name", "").strip()
        password, confirm = form.get("password", ""), form.get("confirm", "")
        errors: dict[str, str] = {}
        if not name:
            errors["name"] = "Choose an account name."
        if not password:
            errors["password"] = "Choose a password."  # noqa: S105 - a message
        elif password != confirm:
            errors["confirm"] = "The two passwords differ."
        if errors:
            return await self.show(request, "sign_up.html", 400, name=name, errors=errors)
        api = self.console.client(request, None)
        try:
            await api.post("/api/v1/signup", {"name": name, "password": password})
        except ApiProblem as exc:
            return await self.show(
                request, "sign_up.html", exc.status, name=name, errors={"form": exc.detail}
            )
        finally:
            await api.aclose()
        try:
            return await self.signed_in(request, name, password)
        except ApiProblem:
            response = RedirectResponse(f"{PREFIX}/sign-in", 303)
            set_flash(response, request, "Your account is ready: sign in.", "success")
            return response

    async def sign_out(self, request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        form = await read_form(request)
        if (
            not token
            or not self.console.same_origin(request)
            or not csrf_ok(token, form.get("csrf", ""))
        ):
            return self.console.forbidden(request, "The sign-out form does not match your session.")
        # The API ends the session itself, so a copied cookie is worthless afterwards.
        api = self.console.client(request, token)
        try:
            await api.post("/api/v1/auth/logout")
        except (ApiProblem, SessionExpired):
            pass  # already over
        finally:
            await api.aclose()
        response = RedirectResponse(f"{PREFIX}/sign-in", 303)
        clear_session(response, request)
        set_flash(response, request, "You have signed out.", "info")
        return response


def _sign_in_message(exc: ApiProblem) -> str:
    if exc.status == 401:
        return "Incorrect login name or password."
    return exc.detail


def _seconds_until(expires_at: str) -> int:
    try:
        end = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    except ValueError:
        return 3600
    return int((end - datetime.now(UTC)).total_seconds())
