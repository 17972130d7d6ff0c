"""Medication-safety knowledge as data: drugs and their classes, and the rules between them.

Every table is a tuple of rows, one rule per row, each with a one-sentence ``basis`` that
says why the rule matters. A rule's drug *target* is either a generic name ("warfarin") or
a class ("nsaid"); :func:`ehrqa.meds.safety.matches` decides whether a drug meets it. The
rules are a compact, conservative subset of common prescribing guidance (BNF, NICE, FDA
labels) for the drugs found in Synthea data and the demo documents, not a formulary.
"""

from __future__ import annotations

from typing import Final

from ehrqa.knowledge import load_knowledge

Severity = str  # "info" | "warning" | "critical"

_KB: Final = load_knowledge()

# (generic name, its own classes, other names: synonyms and brands), "|"-separated, from
# src/ehrqa/knowledge/drug_classes.toml ([[drug]]). Names are lower case; multi-word names
# match as whole phrases.
DRUGS: Final = tuple((d.name, "|".join(d.classes), "|".join(d.names)) for d in _KB.drugs)

# Brand names the question vocabulary knows, for the drugs above (the rows' own names win).
BRANDS: Final = {
    **_KB.brands,
    "augmentin": "co-amoxiclav",  # amoxicillin with clavulanate: a penicillin all the same
}

# Class → wider classes ([parents] of drug_classes.toml). A drug's classes are its own plus
# every ancestor's.
CLASS_PARENTS: Final = dict(_KB.class_parents)

# Aspirin at or below this daily dose (mg) is antiplatelet therapy, not an NSAID dose.
LOW_DOSE_ASPIRIN_MG: Final = 150.0

# Class names that an allergy record may name instead of a drug ("Allergy to cephalosporins").
ALLERGY_CLASS_NAMES: Final = {
    "cephalosporin": "cephalosporin",
    "sulfonamide": "sulfonamide antibiotic",
    "sulfa drug": "sulfonamide antibiotic",
    "nsaid": "nsaid",
    "ace inhibitor": "ace inhibitor",
    "macrolide": "macrolide",
    "fluoroquinolone": "fluoroquinolone",
    "tetracycline": "tetracycline",
    "opioid": "opioid",
    "carbapenem": "carbapenem",
}

# Allergy cross-reactivity: (allergen class, proposed class, severity, relation, basis).
# An allergy to the very drug is always critical; these rows cover its relatives.
ALLERGY_CROSS: Final = (
    (
        "penicillin",
        "penicillin",
        "critical",
        "is a penicillin",
        "All penicillins share the beta-lactam core that penicillin allergy is directed at, "
        "so an allergy to one is an allergy to all.",
    ),
    (
        "penicillin",
        "cephalosporin",
        "warning",
        "is a cephalosporin, which can cross-react with penicillins",
        "About 1-2% of people with penicillin allergy react to cephalosporins, more often to "
        "those with similar side chains and after an immediate-type reaction.",
    ),
    (
        "penicillin",
        "carbapenem",
        "warning",
        "is a carbapenem, which can cross-react with penicillins",
        "Cross-reactivity between penicillins and carbapenems is under 1% but real, so "
        "carbapenems need caution after a severe penicillin reaction.",
    ),
    (
        "cephalosporin",
        "cephalosporin",
        "warning",
        "is another cephalosporin",
        "Cephalosporins with similar side chains cross-react, so another cephalosporin needs "
        "caution after a cephalosporin allergy.",
    ),
    (
        "cephalosporin",
        "penicillin",
        "warning",
        "is a penicillin, which can cross-react with cephalosporins",
        "Beta-lactams share a ring structure and some side chains, so penicillins need "
        "caution after a cephalosporin allergy.",
    ),
    (
        "ace inhibitor",
        "ace inhibitor",
        "critical",
        "is another ACE inhibitor",
        "ACE-inhibitor angioedema and cough are class effects (bradykinin), so every ACE "
        "inhibitor must be avoided after a reaction to one.",
    ),
    (
        "ace inhibitor",
        "arb",
        "warning",
        "is an angiotensin receptor blocker",
        "Angioedema recurs in a small fraction of patients switched from an ACE inhibitor to "
        "an ARB, so the switch needs caution.",
    ),
    (
        "nsaid",
        "nsaid",
        "warning",
        "is another NSAID",
        "NSAID hypersensitivity (bronchospasm, urticaria) is usually a cyclooxygenase-1 class "
        "effect that recurs with other NSAIDs and aspirin.",
    ),
    (
        "sulfonamide antibiotic",
        "sulfonamide antibiotic",
        "critical",
        "contains a sulfonamide antibiotic",
        "Sulfonamide antibiotic allergy recurs with every sulfonamide antibiotic, including "
        "co-trimoxazole.",
    ),
    (
        "macrolide",
        "macrolide",
        "warning",
        "is another macrolide",
        "Allergy to one macrolide can recur with other macrolides.",
    ),
    (
        "fluoroquinolone",
        "fluoroquinolone",
        "warning",
        "is another fluoroquinolone",
        "Fluoroquinolone allergy frequently recurs with other fluoroquinolones.",
    ),
    (
        "tetracycline",
        "tetracycline",
        "warning",
        "is another tetracycline",
        "Allergy to one tetracycline can recur with other tetracyclines.",
    ),
)

# Interactions: (target a, target b, severity, effect, basis). A target is a generic name,
# a class, or several joined by "|". Rows named in TRIPLE_WHAMMY_PAIRS give way to it.
INTERACTIONS: Final = (
    (
        "anticoagulant",
        "nsaid",
        "critical",
        "the risk of serious bleeding is increased",
        "NSAIDs impair platelet function and injure the gastric mucosa, adding to the "
        "bleeding risk of anticoagulants.",
    ),
    (
        "anticoagulant",
        "antiplatelet",
        "warning",
        "the risk of bleeding is increased; check that both are intended",
        "Combining an anticoagulant with an antiplatelet roughly doubles major bleeding and "
        "is only justified by a specific indication.",
    ),
    (
        "warfarin",
        "clarithromycin|erythromycin|azithromycin",
        "warning",
        "the macrolide can raise the INR",
        "Macrolides inhibit warfarin metabolism (CYP3A4) and alter gut flora, raising the "
        "INR; check it within a few days.",
    ),
    (
        "warfarin",
        "azole antifungal",
        "critical",
        "the azole can raise the INR sharply",
        "Azole antifungals, including miconazole oral gel, strongly inhibit warfarin "
        "metabolism (CYP2C9) and can cause dangerous bleeding.",
    ),
    (
        "warfarin",
        "fluoroquinolone|metronidazole|sulfonamide antibiotic|antifolate antibiotic",
        "warning",
        "the antibiotic can raise the INR",
        "These antibiotics inhibit warfarin metabolism or vitamin K production, raising the "
        "INR; check it during the course.",
    ),
    (
        "warfarin",
        "amiodarone",
        "warning",
        "amiodarone raises the INR for months",
        "Amiodarone inhibits warfarin metabolism; the warfarin dose usually needs reducing "
        "by a third to a half.",
    ),
    (
        "raas blocker",
        "potassium-sparing diuretic",
        "warning",
        "the risk of hyperkalaemia is increased",
        "ACE inhibitors and ARBs reduce potassium excretion, as do potassium-sparing "
        "diuretics; monitor potassium.",
    ),
    (
        "ace inhibitor",
        "arb",
        "warning",
        "dual renin-angiotensin blockade raises the risk of hyperkalaemia and kidney injury",
        "Combining an ACE inhibitor with an ARB gives no outcome benefit and more harm "
        "(ONTARGET), so it is not recommended.",
    ),
    (
        "raas blocker",
        "nsaid",
        "warning",
        "the risk of acute kidney injury is increased",
        "NSAIDs constrict the afferent arteriole while ACE inhibitors and ARBs dilate the "
        "efferent one, reducing glomerular filtration.",
    ),
    (
        "diuretic",
        "nsaid",
        "info",
        "the NSAID blunts the diuretic and adds to the risk of kidney injury",
        "NSAIDs cause sodium retention and reduce renal perfusion in volume-depleted patients.",
    ),
    (
        "simvastatin|lovastatin",
        "clarithromycin|erythromycin",
        "critical",
        "the risk of myopathy and rhabdomyolysis is greatly increased",
        "Clarithromycin and erythromycin block CYP3A4, multiplying simvastatin levels; stop "
        "the statin during the course.",
    ),
    (
        "atorvastatin",
        "clarithromycin|erythromycin",
        "warning",
        "the risk of myopathy is increased",
        "CYP3A4 inhibition raises atorvastatin levels; use a low statin dose or pause it "
        "during the course.",
    ),
    (
        "ssri|snri",
        "triptan",
        "warning",
        "the risk of serotonin syndrome is increased",
        "Both raise serotonergic activity; serotonin syndrome is rare but is listed on the "
        "triptan labels.",
    ),
    (
        "ssri|snri",
        "tramadol",
        "warning",
        "the risk of serotonin syndrome and seizures is increased",
        "Tramadol inhibits serotonin reuptake and lowers the seizure threshold.",
    ),
    (
        "ssri|snri",
        "nsaid|anticoagulant",
        "warning",
        "the risk of bleeding is increased",
        "SSRIs deplete platelet serotonin, which adds to the bleeding risk of NSAIDs and "
        "anticoagulants.",
    ),
    (
        "methotrexate",
        "antifolate antibiotic",
        "critical",
        "the risk of bone-marrow suppression is greatly increased",
        "Trimethoprim adds antifolate effect and reduces methotrexate excretion; fatal "
        "pancytopenia has been reported.",
    ),
    (
        "methotrexate",
        "nsaid",
        "warning",
        "methotrexate excretion is reduced",
        "NSAIDs reduce renal clearance of methotrexate, raising its toxicity.",
    ),
    (
        "opioid",
        "benzodiazepine",
        "critical",
        "the risk of profound sedation and respiratory depression is increased",
        "Opioids and benzodiazepines together carry a boxed warning for respiratory "
        "depression and death.",
    ),
    (
        "nitrate",
        "pde5 inhibitor",
        "critical",
        "severe hypotension can follow",
        "PDE5 inhibitors potentiate the vasodilation of nitrates; the combination is "
        "contraindicated.",
    ),
    (
        "clopidogrel",
        "omeprazole|esomeprazole",
        "warning",
        "the antiplatelet effect of clopidogrel is reduced",
        "Omeprazole and esomeprazole inhibit CYP2C19, which activates clopidogrel; prefer "
        "pantoprazole.",
    ),
    (
        "topiramate",
        "combined hormonal contraceptive",
        "warning",
        "contraceptive efficacy may be reduced",
        "Topiramate induces oestrogen metabolism at doses above 200 mg a day.",
    ),
    (
        "non-dihydropyridine calcium channel blocker",
        "beta blocker",
        "warning",
        "the risk of bradycardia and heart block is increased",
        "Verapamil and diltiazem slow atrioventricular conduction, as beta blockers do.",
    ),
)

# The "triple whammy": all three together is critical, and replaces its pair warnings.
TRIPLE_WHAMMY: Final = (
    ("raas blocker", "diuretic", "nsaid"),
    "critical",
    "the triple whammy of an ACE inhibitor or ARB, a diuretic and an NSAID",
    "An ACE inhibitor or ARB, a diuretic and an NSAID together markedly raise the risk of "
    "acute kidney injury, especially with dehydration.",
)
TRIPLE_WHAMMY_PAIRS: Final = frozenset({("raas blocker", "nsaid"), ("diuretic", "nsaid")})

# Duplicate therapy: two different drugs of one of these classes (the same drug twice is
# always a duplicate). (class, label, severity, basis).
DUPLICATE_CLASSES: Final = (
    (
        "nsaid",
        "NSAIDs",
        "warning",
        "Two NSAIDs add gastrointestinal bleeding and kidney risk without adding benefit.",
    ),
    (
        "anticoagulant",
        "anticoagulants",
        "critical",
        "Two anticoagulants together multiply bleeding risk; one should replace the other.",
    ),
    (
        "ace inhibitor",
        "ACE inhibitors",
        "warning",
        "Two ACE inhibitors act on the same enzyme and only add adverse effects.",
    ),
    ("arb", "ARBs", "warning", "Two ARBs act on the same receptor and only add adverse effects."),
    ("statin", "statins", "warning", "Two statins add myopathy risk without adding benefit."),
    (
        "ssri",
        "SSRIs",
        "warning",
        "Two SSRIs raise the risk of serotonin syndrome without adding benefit.",
    ),
    ("beta blocker", "beta blockers", "warning", "Two beta blockers add bradycardia risk."),
    (
        "sulfonylurea",
        "sulfonylureas",
        "warning",
        "Two sulfonylureas add hypoglycaemia risk without adding benefit.",
    ),
    ("triptan", "triptans", "warning", "Two triptans add vasoconstrictive risk."),
    ("opioid", "opioids", "info", "Two opioids add sedation; check that both are intended."),
    (
        "penicillin",
        "penicillins",
        "info",
        "Two penicillins rarely add benefit; check that both are intended.",
    ),
    (
        "proton pump inhibitor",
        "proton pump inhibitors",
        "info",
        "Two proton pump inhibitors add nothing over one.",
    ),
)
SAME_DRUG_BASIS: Final = (
    "The same ingredient in two active prescriptions risks a double dose (paracetamol in "
    "combination products is the classic case)."
)

# eGFR codes (LOINC), newest result used: Synthea's MDRD/CKD-EPI "per 1.73 sq M" variants.
EGFR_LOINCS: Final = frozenset({"33914-3", "62238-1", "48642-3", "48643-1", "98979-8", "69405-9"})

# Renal rules: (target, eGFR from (inclusive), eGFR below (exclusive), severity, advice,
# basis). The advice completes "eGFR 38 on 2024-05-01: ..." and may name {drug}.
RENAL: Final = (
    (
        "metformin",
        0,
        30,
        "critical",
        "avoid {drug} (eGFR below 30)",
        "Metformin accumulates when renal clearance falls and can cause lactic acidosis; it "
        "is contraindicated below an eGFR of 30.",
    ),
    (
        "metformin",
        30,
        45,
        "warning",
        "review the {drug} dose (eGFR 30-44: at most 1 g a day)",
        "Below an eGFR of 45 metformin exposure rises; the dose is reduced and not started.",
    ),
    (
        "nitrofurantoin",
        0,
        45,
        "warning",
        "avoid {drug} (eGFR below 45)",
        "With poor renal function nitrofurantoin fails to reach the urine and its toxicity "
        "(neuropathy, lung injury) rises.",
    ),
    (
        "nsaid",
        0,
        30,
        "critical",
        "avoid {drug} (eGFR below 30)",
        "NSAIDs reduce renal perfusion and can precipitate acute kidney injury in severe "
        "chronic kidney disease.",
    ),
    (
        "nsaid",
        30,
        60,
        "warning",
        "use {drug} with caution (eGFR below 60): lowest dose, shortest time",
        "NSAIDs reduce renal perfusion and can worsen moderate chronic kidney disease.",
    ),
    (
        "apixaban|rivaroxaban|edoxaban",
        0,
        15,
        "critical",
        "avoid {drug} (eGFR below 15)",
        "Factor Xa inhibitors are not recommended in kidney failure for lack of evidence and "
        "risk of accumulation.",
    ),
    (
        "apixaban|rivaroxaban|edoxaban",
        15,
        50,
        "warning",
        "review the {drug} dose (eGFR below 50)",
        "Direct oral anticoagulants are partly cleared by the kidney; labelled doses fall "
        "with creatinine clearance.",
    ),
    (
        "dabigatran",
        0,
        30,
        "critical",
        "avoid {drug} (eGFR below 30)",
        "Dabigatran is 80% renally cleared and contraindicated below a clearance of 30.",
    ),
    (
        "dabigatran",
        30,
        50,
        "warning",
        "review the {drug} dose (eGFR below 50)",
        "Dabigatran is 80% renally cleared, so its dose falls with renal function.",
    ),
    (
        "low molecular weight heparin",
        0,
        30,
        "warning",
        "reduce the {drug} dose or monitor anti-Xa (eGFR below 30)",
        "Low-molecular-weight heparins accumulate in severe renal impairment.",
    ),
    (
        "methotrexate",
        0,
        30,
        "critical",
        "avoid {drug} (eGFR below 30)",
        "Methotrexate is renally cleared; accumulation causes marrow and mucosal toxicity.",
    ),
    (
        "methotrexate",
        30,
        60,
        "warning",
        "reduce the {drug} dose (eGFR below 60)",
        "Methotrexate is renally cleared; its dose falls with renal function.",
    ),
    (
        "potassium-sparing diuretic",
        0,
        30,
        "critical",
        "avoid {drug} (eGFR below 30): hyperkalaemia",
        "Potassium-sparing diuretics cause dangerous hyperkalaemia in severe renal impairment.",
    ),
    (
        "antifolate antibiotic",
        0,
        30,
        "warning",
        "halve the {drug} dose and monitor potassium (eGFR below 30)",
        "Trimethoprim accumulates and raises potassium in severe renal impairment.",
    ),
    (
        "glyburide",
        0,
        60,
        "warning",
        "prefer a shorter-acting sulfonylurea to {drug} (eGFR below 60)",
        "Glibenclamide's active metabolites accumulate in renal impairment, causing prolonged "
        "hypoglycaemia.",
    ),
    (
        "sulfonylurea",
        0,
        30,
        "warning",
        "use {drug} with caution (eGFR below 30): hypoglycaemia",
        "Sulfonylureas and their metabolites accumulate in severe renal impairment.",
    ),
    (
        "morphine|codeine|tramadol",
        0,
        30,
        "warning",
        "reduce the {drug} dose or choose another opioid (eGFR below 30)",
        "Renally cleared opioid metabolites accumulate and cause sedation and toxicity.",
    ),
    (
        "sglt2 inhibitor",
        0,
        45,
        "info",
        "{drug} lowers glucose less below an eGFR of 45 (renal and cardiac benefit remains)",
        "SGLT2 inhibitors work through glomerular filtration of glucose.",
    ),
)

# Condition rules: (target, condition terms, severity, effect, basis). A condition matches
# when its display contains one of the "|"-separated terms (lower case) without a negation.
CONDITION_RULES: Final = (
    (
        "non-selective beta blocker",
        "asthma",
        "critical",
        "is a non-selective beta blocker and can cause severe bronchospasm",
        "Non-selective beta blockers block bronchial beta-2 receptors and are contraindicated "
        "in asthma.",
    ),
    (
        "triptan",
        "coronary|ischemic heart|ischaemic heart|myocardial infarction|angina|stroke"
        "|cerebrovascular|peripheral vascular|peripheral arterial",
        "critical",
        "is a triptan and constricts coronary and cerebral arteries",
        "Triptans are contraindicated in coronary, cerebrovascular and peripheral vascular "
        "disease.",
    ),
    (
        "triptan",
        "hypertension",
        "warning",
        "is a triptan and raises blood pressure; check that hypertension is controlled",
        "Triptans are contraindicated in uncontrolled hypertension and need caution in "
        "controlled hypertension.",
    ),
    (
        "raas blocker",
        "pregnan",
        "critical",
        "is fetotoxic in pregnancy",
        "ACE inhibitors and ARBs cause fetal renal failure and oligohydramnios in the second "
        "and third trimesters.",
    ),
    (
        "statin|warfarin|methotrexate|valproate|topiramate",
        "pregnan",
        "critical",
        "is contraindicated in pregnancy",
        "This drug is teratogenic or contraindicated in pregnancy.",
    ),
    (
        "tetracycline",
        "pregnan",
        "warning",
        "stains developing teeth and bone and is avoided in pregnancy",
        "Tetracyclines cross the placenta and bind to developing teeth and bone.",
    ),
    (
        "nsaid",
        "chronic kidney disease|kidney disease|renal failure|renal insufficiency|nephropathy",
        "warning",
        "is an NSAID and can worsen kidney disease",
        "NSAIDs reduce renal perfusion and can precipitate acute kidney injury in chronic "
        "kidney disease.",
    ),
    (
        "nsaid",
        "heart failure",
        "warning",
        "is an NSAID and can worsen heart failure",
        "NSAIDs cause sodium and water retention and double the risk of heart-failure admission.",
    ),
    (
        "nsaid",
        "peptic ulcer|gastric ulcer|duodenal ulcer|gastrointestinal hemorrhage"
        "|gastrointestinal haemorrhage",
        "critical",
        "is an NSAID and can cause ulcer bleeding",
        "NSAIDs are contraindicated with active peptic ulceration or gastrointestinal bleeding.",
    ),
    (
        "non-dihydropyridine calcium channel blocker",
        "heart failure",
        "warning",
        "depresses cardiac contractility",
        "Verapamil and diltiazem are negatively inotropic and worsen heart failure with "
        "reduced ejection fraction.",
    ),
    (
        "opioid",
        "sleep apnea|sleep apnoea|chronic obstructive|copd|respiratory failure",
        "warning",
        "is an opioid and can depress breathing",
        "Opioids depress respiratory drive, which is dangerous with reduced respiratory reserve.",
    ),
    (
        "fluoroquinolone",
        "aortic aneurysm|myasthenia",
        "warning",
        "is a fluoroquinolone, which is avoided with this condition",
        "Fluoroquinolones raise the risk of aortic dissection and worsen myasthenia gravis.",
    ),
    (
        "combined hormonal contraceptive",
        "migraine with aura|venous thrombosis|thromboembolism|pulmonary embolism|stroke",
        "critical",
        "is an oestrogen-containing contraceptive and raises the risk of stroke and thrombosis",
        "Combined hormonal contraception is contraindicated with migraine with aura and a "
        "history of thromboembolism or stroke.",
    ),
)
