"""The web app's routes, one module per audience: `auth` (logging in and out), `handler`
(worklist, briefings, callbacks), `calls` (a call, its audio and plot, search: every role),
`qa` (queue, review, exports, roll-up), `lead` (dashboard) and `api` (the same as JSON)."""
