"""Running the annotation app with uvicorn, on loopback unless told otherwise.

The socket is bound here before uvicorn starts, so ``port=0`` picks a free port and the links
printed at start-up are the real ones. Access logs are off: the ``/login`` URL carries a token.
uvicorn: https://www.uvicorn.org (BSD-3-Clause).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

from sdme.annotate import AnnotateError
from sdme.annotate.project import Project

EXPOSURE_WARNING = (
    "warning: listening on {host}, not only on this machine. Anyone who can reach port {port} "
    "can reach the app; every route still needs a token, but the traffic is plain HTTP, so on "
    "an untrusted network links (their tokens), votes and clips can be read in transit. Put the "
    "app behind an HTTPS reverse proxy and pass --public-url https://..., or keep the default "
    "host and let annotators connect through an SSH tunnel (ssh -L {port}:127.0.0.1:{port} ...). "
    "Whoever holds a link can annotate as that person, and the owner link shows every vote.")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0: any free port); AnnotateError when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise AnnotateError(f"cannot listen on {host}:{port} ({exc.strerror}); pass another "
                            "--port (0 picks a free one)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(project: Project, host: str = "127.0.0.1", port: int = 8765,
          public_url: str | None = None, echo: Callable[[str], None] = print) -> None:
    """Serves ``project`` until interrupted (Ctrl-C / SIGTERM)."""
    import uvicorn

    from sdme.annotate.app import create_app

    app = create_app(project)
    sock = bind(host, port)
    port = sock.getsockname()[1]
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    url = (public_url or f"http://{shown}:{port}").rstrip("/")
    project.store.set_meta("url", url)
    settings = project.settings
    items = project.store.items()
    echo(f"sdme annotate: {project.manifest.name} {project.manifest.version} — {len(items)} "
         f"items ({', '.join(settings.modalities)}), {settings.votes_per_item} votes each; "
         f"each clip needs {settings.votes_per_item * len(settings.modalities)} different "
         "annotators")
    echo(f"  dashboard (yours): {project.link(project.owner_token())}")
    echo(f"  add annotators:    sdme annotate add-annotator {project.raw_dir} NAME")
    echo(f"  serving on {url} (Ctrl-C stops; votes are saved as they come)")
    if not is_loopback(host):
        echo(EXPOSURE_WARNING.format(host=host, port=port))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            server_header=False, proxy_headers=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


__all__ = ["EXPOSURE_WARNING", "bind", "is_loopback", "serve"]
