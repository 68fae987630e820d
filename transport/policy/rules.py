"""The names of the disclosure rules (:data:`RULES`, each with what it protects) and the
name tokens that mark a column's forbidden role (:data:`FORBIDDEN_TOKENS`): two tables,
apart from the :class:`~transport.policy.Policy` that applies them."""

from __future__ import annotations

__all__ = ["FORBIDDEN_TOKENS", "RULES"]


#: Name tokens that mark a column's role as one that must never be released. A column
#: name is split into lower-case tokens at non-alphanumerics and camelCase boundaries; a
#: token, two adjacent tokens run together (``seen_by``, ``referredBy``) or the whole
#: name may match.
FORBIDDEN_TOKENS: dict[str, frozenset[str]] = {
    "identifier": frozenset(
        [
            "id",
            "ids",
            "pid",
            "patid",
            "patientid",
            "personid",
            "uuid",
            "guid",
            "nhs",
            "nhsno",
            "nhsnumber",
            "mrn",
            "ssn",
            "chi",
            "name",
            "surname",
            "forename",
            "address",
            "postcode",
            "zipcode",
            "zip",
            "dob",
            "birthdate",
            "email",
            "phone",
        ]
    ),
    "practice": frozenset(
        ["practice", "pracid", "surgery", "gpcode", "clinic", "hospital", "trust", "ward"]
    ),
    "physician": frozenset(
        [
            "physician",
            "doctor",
            "clinician",
            "consultant",
            "prescriber",
            "provider",
            "gp",
            "staff",
            "surgeon",
            "oncologist",
            "attending",
            "referrer",
            "referring",
            "seenby",
            "treatedby",
            "referredby",
        ]
    ),
    "free_text": frozenset(
        [
            "note",
            "notes",
            "comment",
            "comments",
            "text",
            "freetext",
            "narrative",
            "description",
            "remarks",
            "memo",
        ]
    ),
}


#: Every rule of the release gate and of release verification, by the name refusals and
#: the manifest's suppression list use, with what it protects. A new rule adds its line
#: here: verification refuses a withheld item whose rule is not one of these.
RULES: dict[str, str] = {
    "patient_rows": "no patient-level rows ever leave",
    "forbidden_column": "identifiers, practices, physicians and free text are never released",
    "formula_closed": "a released formula is data in the closed grammar, never code",
    "min_cell": "no count, share, mean or risk set rests on fewer than min_cell patients",
    "km_grid": "survival curves only on the fixed grid: no exact event time",
    "min_km_step": "each released curve step has none or at least min_km_step exits (as released)",
    "time_grid": "medians (one patient's time) only rounded outwards to the grid",
    "round_to": "released counts are multiples of round_to",
    "min_residual_df": "a released model has at least min_residual_df residual df",
    "min_ess": "a weighted result rests on an effective sample size of at least min_ess: "
    "no patient carries more than 1/min_ess of its weight",
    "model_bounds": "a shipped model's linear predictor spreads over the target by at most "
    "max_log_hazard_ratio, and its numbers are those of a fit",
    "min_contributors": "a shipped model's transported value rests on at least min_cell "
    "effective target patients",
    "centre_lattice": "a released Cox model's centre is its columns' means on a lattice of "
    "their SDs' powers of ten, not the exact means",
    "bootstrap_summary": "a released model's bootstrap is a summary: no refits, no seed, "
    "at most MAX_SHIPPED_BOOT replicates asked of the target",
    "transform_state": "a shipped design's transform state has the keys, kinds and sizes "
    "its formula gives, finite numbers",
    "free_text_levels": "levels that read as free text (names, numbers, notes) never leave",
    "dominance": "no released mean or SD is dominated by its dominance_n largest patients",
    "p_percent": "no patient's contribution to a released mean or SD can be estimated to "
    "within p_percent by another",
    "steep_transform": "a formula chosen by another environment keeps to low-degree "
    "transforms where its means are released, so that the dominance rules bound what it asks",
    "level_coding": "every released design column that codes levels is read back to its "
    "covariate's levels, so that the level rules apply to it",
    "few_values": "a column of few distinct values releases its moments only with "
    "min_cell patients at each value",
    "policy_floor": "no analysis or release loosens the environment's policy",
    "release_path": "verification reads only plain files inside the release directory",
    "release_manifest": "the manifest is as the gate writes it (fields, rules, policy, files)",
    "release_hash": "every released file is listed and unchanged (SHA-256)",
    "release_signature": "with the environment's key: the release is as its gate signed it",
    "release_counts": "released counts agree with the stated policy",
    "release_schema": "each released file has exactly the keys, columns, types and names "
    "the gate writes for it",
}
