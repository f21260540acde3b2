"""E-mail campaigns: templates with merge fields, audiences, A/B variants and a holdout group,
local-time scheduling, and analytics including the effect on retention.

Modules: :mod:`~keepwell.campaigns.templates` (compile, validate, render),
:mod:`~keepwell.campaigns.service` (templates, campaigns, launch, results, one-off sends),
:mod:`~keepwell.campaigns.fields` (the merge-field catalogue).
"""
