"""The command line: start moto and the EKS front in one process.

Owns: argument parsing, binding the socket, the one "ready" line, clean shutdown.

Rules kept: quiet after the ready line unless ``--log-requests`` (or
``SPAR_SANDBOX_LOG_REQUESTS=1``), so a caller that pipes our output and never reads it cannot
block the server; ``MOTO_IAM_LOAD_MANAGED_POLICIES=true`` is set before moto is imported (so AWS
managed policies exist); the ready line is printed only once the socket accepts connections and
names the real port (``--port 0`` picks a free one); the default host is 127.0.0.1.
"""

import argparse
import logging
import os
import signal
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="sandbox/aws/serve",
                                     description="moto + spar's EKS front on one port")
    parser.add_argument("--port", "-p", type=int, default=int(os.environ.get("SPAR_SANDBOX_AWS_PORT", 4566)),
                        help="port to listen on (default 4566; 0 picks a free port)")
    parser.add_argument("--host", "-H", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--log-requests", action="store_true",
                        default=os.environ.get("SPAR_SANDBOX_LOG_REQUESTS", "") not in ("", "0", "false"),
                        help="log every request on stderr (off by default)")
    args = parser.parse_args(argv)
    if not args.log_requests:
        # Quiet by default: a caller that pipes stderr and never reads it must not block us.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    from moto.moto_server.werkzeug_app import (DomainDispatcherApplication, MotoRequestHandler,
                                               create_backend_app)
    from werkzeug.serving import make_server

    from .app import Front

    moto_app = DomainDispatcherApplication(create_backend_app)
    front = Front(moto_app)
    try:
        server = make_server(args.host, args.port, front, threaded=True,
                             request_handler=MotoRequestHandler)
    except OSError as err:
        print(f"sandbox/aws/serve: cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 1
    port = server.server_port
    os.environ.setdefault("MOTO_PORT", str(port))

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"spar sandbox aws ready: http://{args.host}:{port} (moto + EKS front)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
