"""Generate a dev keypair, or manage the JWT and credential Secrets in a cluster.

    generate       write a local dev keypair (defaults: the Settings' key paths)
    ensure-secret  create the JWT key Secrets and generated credentials if absent
                   (the Helm hook Job runs this on every install and upgrade)
    rotate         sign with a new key; the old public key stays
    retire         drop public keys whose tokens have all expired

Cluster commands use the in-cluster ServiceAccount, else the kubeconfig.
Exit status: 0 done, 1 Kubernetes refused or failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import keyfiles
from core.settings import Settings
from keys import kube

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class UsageError(Exception):
    """Arguments that argparse cannot reject on its own."""


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m keys",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    commands = parser.add_subparsers(dest="command", required=True)

    defaults = Settings()
    generate = commands.add_parser("generate", help="write a local dev keypair")
    generate.add_argument("--private", default=defaults.jwt_private_key_path)
    generate.add_argument("--public-dir", default=defaults.jwt_public_keys_path)
    generate.add_argument(
        "--force", action="store_true", help="replace an existing private key"
    )

    cluster = argparse.ArgumentParser(add_help=False)
    cluster.add_argument("--namespace", help="default: the pod's or kubeconfig's")
    cluster.add_argument("--kubeconfig", help="default: $KUBECONFIG or ~/.kube/config")
    cluster.add_argument("--context", help="kubeconfig context")
    cluster.add_argument(
        "--release",
        help="Helm release: names the Secrets <release>-jwt and <release>-jwt-public",
    )
    cluster.add_argument("--jwt-private-secret", help="Secret with private.pem")
    cluster.add_argument("--jwt-public-secret", help="Secret with one <kid>.pem a key")
    cluster.add_argument(
        "--propagation-seconds",
        type=int,
        default=defaults.jwt_key_propagation_s,
        help="a rotated key signs only this long after its public key is out "
        "(JWT_KEY_PROPAGATION_S; default %(default)s)",
    )

    ensure = commands.add_parser(
        "ensure-secret", parents=[cluster], help="create the Secrets if absent"
    )
    ensure.add_argument(
        "--rotation",
        type=int,
        default=0,
        help="rotate once when higher than the last rotation applied",
    )
    ensure.add_argument("--retire-kid", action="append", default=[], metavar="KID")
    ensure.add_argument("--generated-secret", help="Secret of random credentials")
    ensure.add_argument("--generated-key", action="append", default=[], metavar="KEY")
    ensure.add_argument(
        "--label", action="append", default=[], type=_label, metavar="KEY=VALUE"
    )

    commands.add_parser("rotate", parents=[cluster], help="sign with a new key")

    retire = commands.add_parser(
        "retire", parents=[cluster], help="drop expired public keys"
    )
    retire.add_argument("--kid", action="append", required=True, metavar="KID")
    return parser


def run_generate(args: argparse.Namespace) -> int:
    if Path(args.private).exists() and not args.force:
        print(f"{args.private} exists; keeping it (--force replaces it)")
        return 0
    kid = keyfiles.write_keypair(args.private, args.public_dir)
    print(f"wrote {args.private} and {Path(args.public_dir) / (kid + '.pem')}")
    return 0


def _namespace(args: argparse.Namespace, in_cluster: bool) -> str:
    if args.namespace:
        return args.namespace
    if in_cluster and IN_CLUSTER_NAMESPACE.exists():
        return IN_CLUSTER_NAMESPACE.read_text().strip()
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(config_file=args.kubeconfig)
    except config.ConfigException:
        return "default"
    return (active or {}).get("context", {}).get("namespace") or "default"


def connect(args: argparse.Namespace, labels=()) -> kube.SecretStore:
    """A SecretStore for the pod's cluster, else the kubeconfig's."""
    from kubernetes import client, config

    in_cluster = False
    if not args.kubeconfig and not args.context:
        try:
            config.load_incluster_config()
            in_cluster = True
        except config.ConfigException:
            pass
    if not in_cluster:
        config.load_kube_config(config_file=args.kubeconfig, context=args.context)
    return kube.SecretStore(
        client.CoreV1Api(), _namespace(args, in_cluster), dict(labels)
    )


def _jwt_names(args: argparse.Namespace, required: bool) -> tuple[str, str] | None:
    private, public = args.jwt_private_secret, args.jwt_public_secret
    if args.release:
        private = private or f"{args.release}-jwt"
        public = public or f"{args.release}-jwt-public"
    if private and public:
        return private, public
    if private or public or required:
        raise UsageError(
            "give --release, or both --jwt-private-secret and --jwt-public-secret"
        )
    return None


def run_ensure(args: argparse.Namespace) -> int:
    names = _jwt_names(args, required=False)
    if args.generated_key and not args.generated_secret:
        raise UsageError("--generated-key needs --generated-secret")
    if names is None and not args.generated_secret:
        raise UsageError(
            "nothing to ensure: name the JWT Secrets or --generated-secret"
        )
    store = connect(args, args.label)
    if names:
        result = kube.ensure_jwt(
            store,
            *names,
            rotation=args.rotation,
            retire=args.retire_kid,
            propagation_s=args.propagation_seconds,
        )
        if result.created:
            print(f"created {names[0]} and {names[1]}: signing kid {result.kid}")
        elif result.rotated_from:
            print(f"rotated {names[0]}: kid {result.rotated_from} -> {result.kid}")
        else:
            print(f"{names[0]} exists: signing kid {result.kid}, unchanged")
        if result.public_added and not result.created:
            print(f"restored public key {result.kid} in {names[1]}")
        for kid in result.retired:
            print(f"retired public key {kid} from {names[1]}")
    if args.generated_secret:
        added = kube.ensure_generated(store, args.generated_secret, args.generated_key)
        state = f"added {', '.join(added)}" if added else "complete, unchanged"
        print(f"{args.generated_secret}: {state}")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    private, public = _jwt_names(args, required=True)
    kid = kube.rotate_jwt(
        connect(args), private, public, propagation_s=args.propagation_seconds
    )
    print(f"{private} holds kid {kid}; old public keys kept in {public}")
    print(
        f"running API pods sign with it in {args.propagation_seconds} s, "
        "once every pod can verify it; no restart needed"
    )
    return 0


def run_retire(args: argparse.Namespace) -> int:
    private, public = _jwt_names(args, required=True)
    removed = kube.retire_kids(connect(args), private, public, args.kid)
    print(f"removed from {public}: {', '.join(removed) or 'nothing'}")
    return 0


COMMANDS = {
    "generate": run_generate,
    "ensure-secret": run_ensure,
    "rotate": run_rotate,
    "retire": run_retire,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as ex:
        print(f"usage error: {ex}", file=sys.stderr)
        return 2
    except kube.KeysError as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
