"""What the app and the CLI show, computed once: table rows, summaries, and which actions are
allowed here and, if not, why. Pure functions over registry models, jobs and the policy
(`imgai.access.refused`), so `ui/` and `cli/` each make one call and tests reach every rule without
a browser. No gradio here: a tab turns these into components, the CLI into lines.

- `locks`: the policy's refusals as the words beside a greyed button.
- `models`: the model table, `models show`, and the Convert tab's allowed actions with reasons.
- `jobs`: job tables (Convert's conversion and INT8 jobs, Quantize's runs).
- `quantize`: the Quantize form read into a request, its plan, a run's status and check scores.
"""
