"""`uus-agent` command line: register, check-in, run, status.

Exit status: 0 success, 1 failure (message on stderr), 2 usage error, 3 credentials rejected by the
server (revoked or unknown machine: register again with a new token), 4 not registered yet.
The secret and the enrollment token are never printed or logged.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from typing import Any, Dict, List, Optional

from uus_agent import __version__, config, protocol
from uus_agent.service import Agent, AgentError, NotRegistered, describe
from uus_agent.state import StateError
from uus_agent.transport import ServerError, TransportError, Unauthorized

log = logging.getLogger("uus_agent")

EXIT_FAILURE = 1
EXIT_UNAUTHORIZED = 3
EXIT_NOT_REGISTERED = 4


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Global options are accepted before and after the verb (defaults only on the main parser)."""
    d = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        default=d,
        help="where the agent keeps its state (default /var/lib/uus-agent)",
    )
    parser.add_argument(
        "--root", metavar="DIR", default=d, help="the machine's file system is at DIR (default /)"
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=d,
        help="INI file with an [agent] section (default %s)" % config.DEFAULT_CONFIG_FILE,
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="more logging (debug)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uus-agent", description="UUS machine agent: reports inventory and runs apt jobs."
    )
    parser.add_argument("--version", action="version", version="uus-agent " + __version__)
    _global_options(parser, suppress=False)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    reg = verbs.add_parser("register", help="enroll this machine with a server using a token")
    _global_options(reg, suppress=True)
    reg.add_argument(
        "--server", metavar="URL", help="server base URL, e.g. https://uus.example.org"
    )
    reg.add_argument(
        "--token", metavar="TOKEN", required=True, help="enrollment token from `uus tokens create`"
    )
    reg.add_argument("--ca", metavar="FILE", help="CA certificate(s) to trust for the server (PEM)")
    reg.add_argument(
        "--force", action="store_true", help="register again although already registered"
    )

    for name, text in (
        ("check-in", "one cycle: report, upload inventory if asked, run jobs"),
        ("run", "service loop: check in at the server's interval, back off when it is unreachable"),
        ("status", "print the agent's state as JSON (never the secret)"),
    ):
        _global_options(verbs.add_parser(name, help=text), suppress=True)
    return parser


def setup_logging(level: str, verbose: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("uus-agent: %(levelname)s: %(message)s"))
    root = logging.getLogger("uus_agent")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else getattr(logging, level.upper(), logging.INFO))
    root.propagate = False


def _error(message: str) -> None:
    sys.stderr.write("uus-agent: error: %s\n" % message)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    cli_values: Dict[str, Any] = {"state_dir": args.state_dir, "root": args.root}
    if args.verb == "register" and args.ca:
        cli_values["ca"] = args.ca
    try:
        cfg = config.load(cli_values, args.config)
    except config.ConfigError as e:
        _error(str(e))
        return EXIT_FAILURE
    setup_logging(cfg.log_level, args.verbose)
    agent = Agent(cfg)
    try:
        return _dispatch(agent, cfg, args)
    except Unauthorized as e:
        _error(
            "the server rejected this machine's credentials (%s: %s); they were revoked or the "
            "machine is unknown: register again with a new token"
            % (e.code, e.message or "unauthorized")
        )
        return EXIT_UNAUTHORIZED
    except NotRegistered as e:
        _error(str(e))
        return EXIT_NOT_REGISTERED
    except ServerError as e:
        _error("server refused the request: %s: %s" % (e.code, e.message or "HTTP %d" % e.status))
        return EXIT_FAILURE
    except (TransportError, protocol.ProtocolError, AgentError, StateError) as e:
        _error(str(e))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `uus-agent status | head`: not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except OSError as e:
        _error(str(e))
        return EXIT_FAILURE


def _dispatch(agent: Agent, cfg: config.Config, args: argparse.Namespace) -> int:
    if args.verb == "register":
        server = args.server or cfg.server
        if not server:
            raise AgentError("no server: give --server URL (or server = URL in the config file)")
        creds = agent.register(server, args.token, cfg.ca, force=args.force)
        print("registered with %s as machine %s" % (creds["server"], creds["machine"]))
        return 0
    if args.verb == "check-in":
        summary = agent.check_in()
        print("checked in: %s" % describe(summary))
        return EXIT_FAILURE if summary["errors"] else 0
    if args.verb == "run":

        def stop(signum: int, frame: Any) -> None:
            log.info("signal %d: stopping after the current step", signum)
            agent.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info(
            "uus-agent %s running (state %s, root %s)", __version__, agent.state.path, agent.root
        )
        agent.run_forever()
        return 0
    if args.verb == "status":
        json.dump(agent.status(), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    raise AgentError("unknown verb %s" % args.verb)
