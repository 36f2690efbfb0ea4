"""The clinical rules, one pure module per section of clinical-rules.md: triggers (§2),
suppression (§3), imaging (§4), contraindications (§5), fractures (§6)."""
