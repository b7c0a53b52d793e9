"""Does this Flask work with this Werkzeug? import flask, one route, test client GET / -> 200 + body."""
import sys
import traceback

try:
    import flask
except Exception as exc:  # the import itself is the compatibility answer
    print(f"IMPORT-FAIL {type(exc).__name__}: {exc}")
    traceback.print_exc()
    sys.exit(1)

app = flask.Flask(__name__)


@app.route("/")
def index():
    return "hello from flask"


try:
    response = app.test_client().get("/")
    body = response.get_data(as_text=True)
except Exception as exc:
    print(f"CLIENT-FAIL {type(exc).__name__}: {exc}")
    traceback.print_exc()
    sys.exit(1)

if response.status_code != 200 or body != "hello from flask":
    print(f"WRONG-RESPONSE status={response.status_code} body={body[:200]!r}")
    sys.exit(1)
print("OK")
