"""The web UI, served by each cluster's API server at `/`: a client of the same Backend the API
routes call, with the logged-in user's Caller (so it has exactly the API's permissions and the
federation's routing), never the database. Server-rendered pages (Jinja2, autoescaped) and a few
hundred lines of our own JavaScript; live updates through the browser's EventSource."""
