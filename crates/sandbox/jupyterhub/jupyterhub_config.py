# The sandbox's hub: what the zero-to-jupyterhub chart's hub image does with
# our values (hub.config applied as traitlets config, hub.extraConfig executed
# in name order, as z2jh's jupyterhub_config.py does), with the chart's
# Kubernetes parts (KubeSpawner, a proxy pod, services) replaced by local ones.
# crates/sandbox/src/jupyterhub.rs writes hubwright.json beside this file.
import json
import os

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "hubwright.json")) as f:
    _sandbox = json.load(f)
_dir = _sandbox["dir"]

# What the chart sets, made local: one public port (the proxy's), the hub's own
# port and the proxy's API port, all on 127.0.0.1 and picked free by the sandbox.
# As in the chart, the proxy runs apart (the sandbox starts it) and both read
# CONFIGPROXY_AUTH_TOKEN from the environment.
c.JupyterHub.bind_url = _sandbox["bind_url"]
c.JupyterHub.hub_bind_url = _sandbox["hub_bind_url"]
c.ConfigurableHTTPProxy.api_url = _sandbox["proxy_api_url"]
c.ConfigurableHTTPProxy.should_start = False
c.JupyterHub.db_url = "sqlite:///" + os.path.join(_dir, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(_dir, "jupyterhub_cookie_secret")
c.JupyterHub.cleanup_servers = True
c.JupyterHub.last_activity_interval = 60
# Only login is tested: nothing is ever spawned.
c.JupyterHub.spawner_class = "simple"

# hub.config, as z2jh applies it (the keys it takes from its own Secret dropped).
for app, cfg in _sandbox["hub_config"].items():
    if app == "JupyterHub":
        cfg.pop("proxy_auth_token", None)
        cfg.pop("cookie_secret", None)
        cfg.pop("services", None)
    elif app == "ConfigurableHTTPProxy":
        cfg.pop("auth_token", None)
    elif app == "CryptKeeper":
        cfg.pop("keys", None)
    c[app].update(cfg)

# hub.extraConfig, sorted by name, as z2jh executes it.
for _name, _snippet in sorted(_sandbox["extra_config"].items()):
    print("Loading extra config: %s" % _name)
    exec(_snippet)
