"""The edge cache of the local stack: Varnish with vmod xkey (Debian's `varnish` and
`varnish-modules`), in front of publishing and the public website.

Its VCL is `deploy/edge/portal.vcl`, the same file docker-compose mounts into the official
varnish image; only the origins' addresses and the purgers' ACL differ, rendered here from
`deploy/edge/backends.vcl.template` into the data folder. The purge token reaches varnishd
through its environment (EDGE_PURGE_TOKEN, read by the VCL), never through a file of the
repository or of the data folder.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from string import Template

import httpx

from portal_launcher.process import Component, ComponentFailed
from portal_launcher.settings import REPO_ROOT, StackSettings

EDGE_DIR = REPO_ROOT / "deploy" / "edge"
VCL = EDGE_DIR / "portal.vcl"
BACKENDS_TEMPLATE = EDGE_DIR / "backends.vcl.template"
SYSTEM_VCL_DIR = "/usr/share/varnish/vcl"
# Where Debian's varnish-modules installs the xkey module (multiarch folder of the vmods).
_VMOD_GLOBS = ("/usr/lib/*/varnish/vmods/libvmod_xkey.so", "/usr/lib/varnish/vmods/libvmod_xkey.so")

# Run-time parameters: room for long Surrogate-Key headers (a page lists many articles), a small
# shared-memory log and a modest thread pool (the machine has 2 cores and several stacks).
PARAMETERS = {
    "http_resp_hdr_len": "64k",
    "http_resp_size": "128k",
    "workspace_backend": "256k",
    "vsl_space": "16m",
    "thread_pool_min": "20",
    "thread_pool_max": "1000",
    "default_grace": "0",  # only what the origin allows (stale-while-revalidate/-if-error)
}


def varnishd_binary() -> Path:
    found = shutil.which("varnishd") or (
        "/usr/sbin/varnishd" if Path("/usr/sbin/varnishd").is_file() else None
    )
    if found is None:
        raise ComponentFailed(
            "varnishd is missing: install Debian's varnish and varnish-modules "
            "(deploy/system-deps.sh does)"
        )
    return Path(found)


def xkey_installed() -> bool:
    return any(Path("/").glob(pattern.lstrip("/")) for pattern in _VMOD_GLOBS)


def split_address(address: str, default_host: str) -> tuple[str, int]:
    """'host:port' (or ':port', or 'port') -> (host, port)."""
    host, _, port = address.rpartition(":")
    return host or default_host, int(port)


def acl_entries(purgers: str) -> str:
    """The ACL body for comma-separated IPs or CIDRs (checked here: VCL would name no line)."""
    lines = []
    for item in (p.strip() for p in purgers.split(",")):
        if not item:
            continue
        network = ipaddress.ip_network(item, strict=False)
        if network.num_addresses == 1:
            lines.append(f'    "{network.network_address}";')
        else:
            lines.append(f'    "{network.network_address}"/{network.prefixlen};')
    if not lines:
        raise ValueError("edge purgers: at least one address is needed")
    return "\n".join(lines)


def render_backends(
    *,
    publishing: tuple[str, int],
    website: tuple[str, int] | None,
    purgers: str,
) -> str:
    site = website or publishing
    return Template(BACKENDS_TEMPLATE.read_text()).substitute(
        publishing_host=publishing[0],
        publishing_port=str(publishing[1]),
        website_host=site[0],
        website_port=str(site[1]),
        purgers=acl_entries(purgers),
    )


def local_backends(settings: StackSettings) -> str:
    website = (
        split_address(settings.edge_website, settings.host)
        if settings.edge_website
        else (settings.host, settings.web_port)  # the stack's own website
    )
    return render_backends(
        publishing=(settings.host, settings.publishing_port),
        website=website,
        purgers=settings.edge_purgers,
    )


class VarnishComponent(Component):
    name = "varnish"

    @property
    def work_dir(self) -> Path:
        return self.dir / "work"  # varnishd's -n: shared memory log and counters (varnishstat -n)

    @property
    def backends_file(self) -> Path:
        return self.dir / "backends.vcl"

    @property
    def admin_secret_file(self) -> Path:
        return self.dir / "admin-secret"

    def install(self) -> None:
        varnishd_binary()
        if not xkey_installed():
            raise ComponentFailed(
                "vmod xkey is missing: install Debian's varnish-modules (deploy/system-deps.sh)"
            )

    def prepare(self) -> None:
        self.install()
        self.dir.mkdir(parents=True, exist_ok=True)
        # Rendered on every start so that changed ports or a website added take effect.
        self.backends_file.write_text(local_backends(self.settings))
        if not self.admin_secret_file.exists():
            fd = os.open(self.admin_secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32) + "\n")

    def command(self) -> list[str]:
        s = self.settings
        cmd = [
            str(varnishd_binary()),
            "-F",  # foreground: the launcher owns the process (and stops it by its pid)
            # The local stack's files are the user's checkout: run as the launcher's user.
            "-j",
            "none",
            "-n",
            str(self.work_dir),
            "-a",
            f"{s.host}:{s.varnish_port}",
            "-T",
            f"{s.host}:{s.varnish_admin_port}",
            "-S",
            str(self.admin_secret_file),
            "-f",
            str(VCL),
            "-p",
            f"vcl_path={self.dir}:{SYSTEM_VCL_DIR}",
            "-s",
            s.varnish_storage,
        ]
        for name, value in PARAMETERS.items():
            cmd += ["-p", f"{name}={value}"]
        return cmd

    def environment(self) -> dict[str, str]:
        from portal_launcher.credentials import edge_purge_token

        return {**os.environ, "EDGE_PURGE_TOKEN": edge_purge_token(self.settings)}

    def probe(self) -> bool:
        return httpx.get(f"{self.endpoint()}/_edge/healthz", timeout=3.0).status_code == 200

    def version(self) -> str:
        out = subprocess.run(
            [str(varnishd_binary()), "-V"], capture_output=True, text=True, timeout=30
        )
        # "varnishd (varnish-7.1.1 revision ...)" -> "Varnish 7.1.1"
        text = out.stderr + out.stdout
        start = text.find("varnish-")
        if start < 0:
            return "unknown"
        return "Varnish " + text[start + len("varnish-") :].split()[0]

    def endpoint(self) -> str:
        return self.settings.edge_url


def purge_edge(settings: StackSettings, keys: list[str], *, hard: bool) -> int | None:
    """Invalidate surrogate keys on the stack's edge (what the purger does for events); the
    number of objects, or None when the edge does not run."""
    from portal_launcher.credentials import edge_purge_token

    if not VarnishComponent(settings).is_running():
        return None
    resp = httpx.request(
        "PURGE",
        f"{settings.edge_url}/",
        headers={
            "Authorization": f"Bearer {edge_purge_token(settings)}",
            "xkey": " ".join(keys),
            "xkey-purge": "hard" if hard else "soft",
        },
        timeout=10.0,
    )
    if resp.status_code != 200:
        raise ComponentFailed(f"the edge refused the purge: {resp.status_code} {resp.text[:200]}")
    words = resp.text.split()
    return int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
