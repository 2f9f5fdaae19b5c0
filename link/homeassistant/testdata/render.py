"""Renders Home Assistant value templates with Jinja2 for the Go test.

Reads {name: {"template": source, "messages": {message name: payload}}}
on stdin and writes {name: {message name: rendered}} on stdout. A template
sees the message as value_json, as Home Assistant's MQTT entities do;
to_json is Home Assistant's filter of that name (json.dumps).
"""
import json
import sys

import jinja2.sandbox

env = jinja2.sandbox.ImmutableSandboxedEnvironment()
env.filters["to_json"] = json.dumps

out = {}
for name, job in json.load(sys.stdin).items():
    tpl = env.from_string(job["template"])
    out[name] = {m: tpl.render(value_json=p, value=json.dumps(p)) for m, p in job["messages"].items()}
json.dump(out, sys.stdout)
