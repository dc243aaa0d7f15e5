#!/usr/bin/python3
"""Check ceso-cloudinit output with cloud-init's own code (Debian 12: cloud-init 22.4).

Nothing of cloud-init is reimplemented here: the guestinfo goes through
DataSourceVMware (its VMX_GUESTINFO_* environment transport shares the
decoding and process_metadata with the guestinfo one), user-data through
cloudinit.config.schema (strict), network config through
cloudinit.net.network_state and the netplan renderer, then `netplan generate`.

  validate_cloudinit.py [--from ndjson|vmx|kv|govc] < OUTPUT   one JSON summary per set
  validate_cloudinit.py --dir DIR                              the same for --format dir=DIR
  validate_cloudinit.py --from FMT --dump < OUTPUT             the key/values as JSON, no checks
Exit status 1 with the reason on stderr when a set is rejected.
"""
import argparse, copy, glob, json, os, re, shlex, subprocess, sys, tempfile

from cloudinit import helpers, safeyaml, stages, util
from cloudinit.config import schema
from cloudinit.handlers import type_from_starts_with
from cloudinit.net import netplan, network_state
from cloudinit.sources import DataSourceVMware as vmware

KNOWN_ENCODINGS = ("gzip+base64", "gz+b64", "base64", "b64")


def fail(msg):
    sys.exit("validate_cloudinit: " + msg)


def read_sets(fmt, text):
    """Key/value sets from one output format (stream headers start a new set)."""
    sets = []
    if fmt == "ndjson":
        for line in text.splitlines():
            if line.strip():
                rec = json.loads(line)
                sets.append((rec.get("guestinfo", rec), rec.get("documents")))
        return sets
    if fmt == "govc":
        # One line per set, except that quoted values may span lines.
        buf = ""
        for line in text.splitlines(keepends=True):
            buf += line
            try:
                words = shlex.split(buf)
            except ValueError:
                continue
            if words[0::2] != ["-e"] * (len(words) // 2) or len(words) % 2:
                fail("not -e key=value pairs: " + buf)
            sets.append((dict(w.split("=", 1) for w in words[1::2]), None))
            buf = ""
        return sets
    current = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            if current:
                sets.append((current, None))
            current = {}
            continue
        if fmt == "vmx":
            m = re.fullmatch(r'(\S+) = "([^"]*)"', line)
            if not m:
                fail("not a .vmx line: " + line)
            # VMware's dictionary escaping (open-vm-tools dictll.c): |XX hex.
            value = re.sub(r"\|([0-9A-F]{2})", lambda h: chr(int(h.group(1), 16)), m.group(2))
            current[m.group(1)] = value
        else:
            key, _, value = line.partition("=")
            current[key] = value
    if current:
        sets.append((current, None))
    return sets


def check_network(cfg):
    """Parse as cloud-init does, render with its netplan renderer, run netplan."""
    cfg = stages.Init._remove_top_level_network_key(None, cfg)
    renderer = netplan.Renderer({"postcmds": False, "clean_default": False})
    state = network_state.parse_net_config_data(cfg, skip_broken=False, renderer=renderer)
    if cfg.get("version") == 2:
        # The v2 interpreter that non-netplan renderers use: cloud-init 22.4
        # does not know `to: default` there (canonical/cloud-init#3988, fixed
        # upstream by PR #6391), so spell it out for this part of the check.
        spelled = copy.deepcopy(cfg)
        for eth in spelled.get("ethernets", {}).values():
            for r in eth.get("routes", []):
                if r.get("to") == "default":
                    r["to"] = "::/0" if ":" in str(r.get("via")) else "0.0.0.0/0"
        network_state.parse_net_config_data(spelled, skip_broken=False)
    with tempfile.TemporaryDirectory() as root:
        renderer.render_network_state(state, target=root)
        p = subprocess.run(["netplan", "generate", "--root-dir", root],
                           capture_output=True, text=True)
        if p.returncode != 0 or "deprecated" in p.stderr.lower():
            fail("netplan generate: " + p.stderr.strip())
        generated = ""
        for f in sorted(glob.glob(root + "/run/systemd/network/*.network")
                        + glob.glob(root + "/run/NetworkManager/system-connections/*")):
            with open(f) as fh:
                generated += fh.read()
    addresses = []
    for eth in cfg.get("ethernets", {}).values():
        for a in eth.get("addresses", []):
            if "Address=" + a not in generated:
                fail("address %s missing from netplan's networkd files" % a)
            addresses.append(a)
        for r in eth.get("routes", []):
            if "Gateway=" + r["via"] not in generated:
                fail("route via %s missing from netplan's networkd files" % r["via"])
    return addresses


def check_userdata(raw):
    if raw is None:
        return None, None
    text = util.decode_binary(util.decomp_gzip(util.encode_text(raw) if isinstance(raw, str)
                                               else raw, quiet=True, decode=False))
    if "mime-version:" in text[:4096].lower():
        return "multipart", text
    kind = type_from_starts_with(text)
    if kind != "text/cloud-config":
        return kind, text
    cfg = safeyaml.load(text)
    schema.validate_cloudconfig_schema(cfg, schema.get_schema(), strict=True)
    return "cloud-config", cfg


def validate(values, documents=None):
    for key, value in values.items():
        if not key.startswith("guestinfo."):
            fail("unexpected key " + key)
        if key.startswith("guestinfo.vendordata"):
            fail("vendordata is not ours to set (network config goes in metadata)")
        if len(value.encode()) >= 64 * 1024:
            fail("%s is %d bytes, not under 64 KiB" % (key, len(value.encode())))
        if key.endswith(".encoding") and value and value not in KNOWN_ENCODINGS:
            fail("%s=%s: cloud-init would read the value as plain text" % (key, value))
    env = {"VMX_GUESTINFO": "1"}
    for key, value in values.items():
        env[vmware.get_guestinfo_envvar_key_name(key[len("guestinfo."):])] = value
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paths = helpers.Paths({"cloud_dir": tmp, "run_dir": tmp})
            ds = vmware.DataSourceVMware({}, None, paths)
            if not ds._get_data():
                fail("DataSourceVMware found no data")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    md = ds.metadata
    for key in ("instance-id", "local-hostname"):
        if not md.get(key):
            fail("metadata lacks " + key)
    summary = {"instance_id": ds.get_instance_id(), "local_hostname": md["local-hostname"],
               "cleanup": md.get("cleanup-guestinfo"), "network": None, "addresses": []}
    if "network" in md:
        summary["network"] = ds.network_config
        summary["addresses"] = check_network(ds.network_config)
    summary["userdata_type"], summary["userdata"] = check_userdata(ds.userdata_raw)
    if documents is not None:
        if documents.get("userdata") != util.decode_binary(ds.userdata_raw):
            fail("documents.userdata differs from the decoded guestinfo.userdata")
        if "network" in md and safeyaml.load(documents["network"]) != ds.network_config:
            fail("documents.network differs from the decoded metadata network")
    return summary


def from_dir(path):
    """A dir=PATH output as the guestinfo it mirrors (plain, network in metadata)."""
    with open(os.path.join(path, "meta-data")) as fh:
        md = vmware.load_json_or_yaml(fh.read())
    net = os.path.join(path, "network-config")
    if os.path.exists(net):
        with open(net) as fh:
            md["network"] = fh.read()
    with open(os.path.join(path, "user-data")) as fh:
        return {"guestinfo.metadata": json.dumps(md), "guestinfo.userdata": fh.read()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="fmt", default="ndjson", choices=["ndjson", "vmx", "kv", "govc"])
    ap.add_argument("--dir")
    ap.add_argument("--dump", action="store_true")
    args = ap.parse_args()
    sets = [(from_dir(args.dir), None)] if args.dir else read_sets(args.fmt, sys.stdin.read())
    for values, documents in sets:
        out = values if args.dump else validate(values, documents)
        print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
