"""`skinpamper serve`: the HTTP service and its page, over a run folder or an ONNX export."""

from __future__ import annotations

import click


@click.command("serve", short_help="Serve predictions over HTTP, with a page.")
@click.argument("model_path", metavar="RUN_OR_ONNX", type=click.Path(exists=True))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port.")
def serve_command(model_path: str, host: str, port: int) -> None:
    """Serve predictions over HTTP, with a page at / and the API docs at /docs.

    An .onnx export needs only `pip install 'skinpamper[serve]'` (no Keras); a run folder needs
    Keras too and adds the Grad-CAM overlay. Limits come from SKINPAMPER_SERVE_* variables
    (MAX_UPLOAD_BYTES, MAX_FILES, MAX_PIXELS, MAX_REQUEST_PIXELS, MAX_INFERENCES, ONNX_THREADS, TTA,
    CORS_ORIGINS, MAX_HEADER_BYTES, HEADER_TIMEOUT, BODY_TIMEOUT, KEEP_ALIVE_TIMEOUT, MAX_CONNECTIONS,
    SHUTDOWN_TIMEOUT; see docs/serving.md) and are checked before the port is opened. --port 0 takes
    a free port.

    \b
    Examples:
      skinpamper serve runs/seed/model.onnx
      SKINPAMPER_SERVE_CORS_ORIGINS=https://example.org skinpamper serve runs/seed --port 9000
    """
    from skinpamper.errors import ConfigError

    try:
        from skinpamper.serving.service.app import create_app
        from skinpamper.serving.service.server import listen, serve
        from skinpamper.serving.service.settings import load_settings
    except ImportError as exc:
        raise ConfigError(f"serve needs {exc.name}: pip install 'skinpamper[serve]'") from None
    from skinpamper.serving.predict import Predictor

    settings = load_settings()
    sock = listen(host, port)  # a port in use fails now, not after the model has loaded
    predictor = Predictor.load(
        model_path, tta=settings.tta, max_pixels=settings.max_pixels, threads=settings.onnx_threads
    )
    app = create_app(predictor, settings)
    bound = sock.getsockname()[1]
    click.echo(f"serving {predictor.card.model_id} ({predictor.backend}) at http://{host}:{bound}/", err=True)
    serve(app, sock, settings)
