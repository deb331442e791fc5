"""Known-truth CRM worlds: pipelines whose exact win probabilities are known, written as real exports.

Why: revbot's probabilities and reasons must hold on data it was not tuned on. Each world writes the
weekly files a CRM admin would download and, kept apart, the truth a model is scored against: each
open deal's Bayes-optimal win probability at each export and each deal's cause of risk.

- `stages`: a Salesforce opportunity report; deals move stage by stage under daily hazards.
- `inbound`: a HubSpot "export all deals"; inbound deals are decided by engagement, go quiet and
  are bulk-closed at quarter ends.

Both share the API `generate`, `export_days`, `export_frame`, `truth_at`, `outcomes`, `write`.
"""
