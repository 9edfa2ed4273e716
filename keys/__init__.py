"""Key tooling: a local dev keypair, and the JWT/credential Secrets in a cluster.

``python -m keys --help`` lists the commands. Only :mod:`keys.kube` talks to
Kubernetes; the key material itself comes from :mod:`core.keyfiles`.
"""
