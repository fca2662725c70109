"""The request a browser sends to draw a page of the Dash app, for tests over plain HTTP."""

from __future__ import annotations

import json

from flask.testing import FlaskClient


def page_callback(client: FlaskClient, path: str, search: str = "") -> str:
    """What the page callback answers for ``path`` + ``search``, as text a person would read
    (Dash escapes "/" and non-ASCII: dumped again without ASCII escapes)."""
    body = {
        "output": "..page.children...nav.children..",
        "outputs": [{"id": "page", "property": "children"}, {"id": "nav", "property": "children"}],
        "inputs": [
            {"id": "url", "property": "pathname", "value": path},
            {"id": "url", "property": "search", "value": search},
        ],
        "changedPropIds": ["url.pathname"],
        "state": [],
    }
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.data[:500]
    assert response.headers["Cache-Control"] == "no-store"
    return json.dumps(response.get_json(), ensure_ascii=False)
