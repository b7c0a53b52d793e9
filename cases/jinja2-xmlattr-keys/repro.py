"""Does Jinja's `xmlattr` filter accept an attribute name that injects another attribute?

GHSA-h75v-3vvj-5mfj / CVE-2024-34064: XML/HTML attribute names cannot contain spaces, `/`, `>`
or `=`. A key such as ``x/onmouseover=alert(1)`` carries none of the characters escaping
changes (`& < > ' "`) and no space, so a filter that only escapes (or only refuses spaces, as
3.1.3 does for GHSA-h5c8-rqwp-cp95) emits it as written: the browser reads a second attribute.

Exit 1 with the signature when the unsafe name reaches the output, 0 when the filter refuses it
(ValueError), 125 when the output is neither (this repro cannot tell).
"""

import sys

from jinja2 import Environment

KEY = "x/onmouseover=alert(1)"
SIGNATURE = "xmlattr emitted an injected attribute name"

env = Environment(autoescape=True)
template = env.from_string("<p{{ attrs|xmlattr }}></p>")
try:
    html = template.render(attrs={KEY: "1"})
except ValueError as exc:
    print(f"refused: {exc}")
    sys.exit(0)
print(html)
if f"{KEY}=" in html:
    print(SIGNATURE)
    sys.exit(1)
sys.exit(125)
