"""What the app and the CLI show, computed once: table rows, summaries, and which actions are
allowed here and, if not, why. Pure functions over registry models, jobs and the policy
(`imgai.access.refused`), so `ui/` and `cli/` each make one call and tests reach every rule without
a browser. No gradio here: a tab turns these into components, the CLI into lines.

- `locks`: the policy's refusals as the words beside a greyed button.
- `models`: the model table, `models show`, the Convert tab's allowed actions with reasons, and
  Browse's "Add model" (its preprocessing fields, the message about the added model).
- `jobs`: job tables (Convert's conversion and INT8 jobs, Quantize's runs).
- `quantize`: the Quantize form read into a request, its plan, a run's status and check scores.
- `hub`: a Hub repo's details and a download's progress (Browse).
- `tag`: the Tag tab: which model is ready, the form run, a run's summary, rows and bars.
- `train`: the Train tab's tables, one job's detail, curves and buttons, a data check.
- `train_form`: the Train tab's forms (data pipeline, settings, fine-tune defaults, Retrain).
- `curves`: training curves as an inline SVG.
- `int8`, `library`, `support`: the INT8 search's panel, the photo library, the support table.
"""
