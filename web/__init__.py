"""The handler and QA web app: worklist, briefings, call view with audio, search, QA review, dashboard."""
