"""The vocabulary of patient questions: resource-type cue words and clinical concepts.

Everything here is data (module-level tables) plus a few lookups over an index built once
at import. A *concept* is one clinical thing a question can name — a lab, a vital sign, a
condition, a vaccine, a drug class, a single drug, an allergen, a procedure — with the
codes that identify it in Synthea-style FHIR data and the lower-case ``terms`` to look for
in code displays when the codes differ. A *cue* is a word that names a kind of record
("labs", "vaccines", "visit") and so a FHIR resource type and, for observations, a category.

Matching is word-based and longest-first: the question is split into words, each word
gets a light plural folding ("allergies" → "allergy", "labs" → "lab"), and at every
position the longest known phrase wins, so "high blood pressure" is hypertension, not the
blood-pressure vital, and "blood pressure medicine" is the antihypertensive class.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from ehrqa.errors import NotFoundError

# --- resource types ------------------------------------------------------------------------

OBSERVATION: Final = ("Observation",)
MEDICATION_TYPES: Final = ("MedicationRequest", "MedicationStatement")
LAB_CATEGORY: Final = "laboratory"
VITAL_CATEGORY: Final = "vital-signs"
SOCIAL_CATEGORY: Final = "social-history"
SURVEY_CATEGORY: Final = "survey"


@dataclass(frozen=True)
class Concept:
    """One clinical concept a question can name.

    ``codes`` are bare codes of one ``system`` (LOINC, SNOMED, CVX or RxNorm) as they occur
    in ``Coding.code``; ``terms`` are lower-case substrings of code displays and record
    texts; ``synonyms`` are the phrases that name the concept in a question. ``related``
    names concepts that stand in for this one when the question asks for another record
    type ("medication for diabetes" → the diabetes-medicine class).
    """

    name: str
    kind: str
    system: str
    codes: frozenset[str]
    terms: tuple[str, ...]
    synonyms: tuple[str, ...]
    resource_types: tuple[str, ...]
    category: str | None = None
    related: tuple[str, ...] = ()

    @property
    def is_measurement(self) -> bool:
        """Whether records of this concept carry values (labs, vitals, scores)."""
        return self.kind in ("lab", "vital", "panel", "survey", "social")


@dataclass(frozen=True)
class Cue:
    """A phrase that names a kind of record: resource types and observation categories."""

    resource_types: tuple[str, ...]
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Match:
    """One recognised phrase of a question, as word positions ``[start, end)``."""

    phrase: str
    start: int
    end: int
    concepts: tuple[Concept, ...]
    cue: Cue | None
    plural: bool


# --- data tables -----------------------------------------------------------------------------
# Rows are (name, codes, question phrases, display terms[, related]); codes are separated by
# spaces, phrases and terms by "|". The canonical name is always a phrase as well.

LABS: Final = (
    (
        "hba1c",
        "4548-4 17856-6",
        "hemoglobin a1c|haemoglobin a1c|a1c|hgba1c|hb a1c|glycated hemoglobin"
        "|glycosylated hemoglobin|glycohemoglobin|a1c test|hba1c test",
        "a1c|glycated hemoglobin|glycohemoglobin",
    ),
    (
        "glucose",
        "2339-0 2345-7 41653-7",
        "blood glucose|fasting glucose|glucose level|serum glucose|fasting blood sugar",
        "glucose [mass/volume] in blood|glucose [mass/volume] in serum",
    ),
    (
        "total cholesterol",
        "2093-3",
        "cholesterol|cholesterol level|serum cholesterol",
        "cholesterol [mass/volume]",
    ),
    (
        "ldl cholesterol",
        "18262-6 13457-7 2089-1",
        "ldl|bad cholesterol|low density lipoprotein|ldl c",
        "low density lipoprotein|ldl",
    ),
    (
        "hdl cholesterol",
        "2085-9",
        "hdl|good cholesterol|high density lipoprotein|hdl c",
        "cholesterol in hdl|hdl",
    ),
    ("triglycerides", "2571-8", "triglyceride|trigs|trig", "triglyceride"),
    ("creatinine", "38483-4 2160-0", "serum creatinine|creat", "creatinine [mass/volume]"),
    (
        "egfr",
        "33914-3 62238-1 69405-9 98979-8",
        "gfr|glomerular filtration rate|estimated gfr",
        "glomerular filtration rate",
    ),
    ("urea nitrogen", "6299-2 3094-0", "bun|blood urea nitrogen|urea", "urea nitrogen"),
    (
        "microalbumin",
        "14959-1",
        "urine albumin|albumin creatinine ratio|uacr|microalbumin creatinine ratio"
        "|microalbuminuria test",
        "microalbumin",
    ),
    ("potassium", "6298-4 2823-3", "serum potassium|potassium level", "potassium"),
    ("sodium", "2947-0 2951-2", "serum sodium|sodium level", "sodium [moles/volume]"),
    ("chloride", "2069-3 2075-0", "serum chloride", "chloride"),
    ("carbon dioxide", "20565-8 2028-9", "co2|bicarbonate|bicarb|hco3|total co2", "carbon dioxide"),
    ("calcium", "49765-1 17861-6", "serum calcium|calcium level", "calcium"),
    (
        "hemoglobin",
        "718-7",
        "haemoglobin|hgb|hb|hemoglobin level",
        "hemoglobin [mass/volume] in blood",
    ),
    ("hematocrit", "4544-3 20570-8", "hct|haematocrit", "hematocrit"),
    (
        "white blood cells",
        "6690-2 26464-8",
        "wbc|white blood cell|white blood count|white count|white cell count|leukocyte"
        "|leukocyte count",
        "leukocytes [#/volume]",
    ),
    (
        "red blood cells",
        "789-8",
        "rbc|red blood cell|red cell count|erythrocyte|red blood count",
        "erythrocytes [#/volume]",
    ),
    ("platelets", "777-3", "platelet|platelet count|plt", "platelets [#/volume]"),
    ("mcv", "787-2", "mean corpuscular volume", "mcv"),
    ("alt", "1742-6", "alanine aminotransferase|sgpt", "alanine aminotransferase"),
    ("ast", "1920-8", "aspartate aminotransferase|sgot", "aspartate aminotransferase"),
    ("alkaline phosphatase", "6768-6", "alk phos|alp", "alkaline phosphatase"),
    ("bilirubin", "1975-2", "total bilirubin", "bilirubin.total [mass/volume] in serum"),
    ("albumin", "1751-7", "serum albumin", "albumin [mass/volume] in serum"),
    (
        "tsh",
        "3016-3",
        "thyroid stimulating hormone|thyrotropin|thyroid test|thyroid function",
        "thyrotropin",
    ),
    ("psa", "2857-1", "prostate specific antigen|psa test", "prostate specific ag"),
    ("vitamin d", "1989-3 62292-8", "vitamin d level|25 hydroxyvitamin d", "vitamin d"),
    ("inr", "6301-6 34714-6", "pt inr|prothrombin time|coagulation test", "inr"),
    ("ferritin", "2276-4", "iron stores", "ferritin"),
    (
        "urinalysis",
        "24357-6 5811-5 5803-2 5804-0 5792-7 20454-5",
        "urine test|ua|urine dipstick",
        "in urine by test strip|of urine",
    ),
    (
        "blood type",
        "883-9 10331-7 882-1",
        "blood group|abo|abo group|rh factor|rh type|blood typing",
        "abo group|rh [type]|abo and rh",
    ),
    (
        "allergy ige test",
        "6206-7 6158-0 6833-8 6844-5 6095-4 6085-5",
        "ige|ige test|allergy blood test",
        "ige ab",
    ),
)
PANELS: Final = (
    (
        "lipid panel",
        "57698-3 24331-1 2093-3 18262-6 2085-9 2571-8",
        "lipid|lipid profile|cholesterol panel|cholesterol test|fasting lipid panel",
        "lipid panel|cholesterol|triglyceride",
    ),
    (
        "metabolic panel",
        "51990-0 24321-2 24323-8",
        "basic metabolic panel|bmp|comprehensive metabolic panel|cmp|chem 7|chem7|chemistry panel",
        "metabolic",
    ),
    (
        "complete blood count",
        "58410-2 57021-8",
        "cbc|blood count|full blood count|hemogram|cbc panel",
        "cbc panel|blood by automated count",
    ),
)
VITALS: Final = (
    (
        "blood pressure",
        "85354-9 8480-6 8462-4 55284-4",
        "bp|blood pressure reading|b p",
        "blood pressure",
    ),
    (
        "systolic blood pressure",
        "8480-6",
        "systolic|top number|systolic pressure",
        "systolic blood pressure",
    ),
    (
        "diastolic blood pressure",
        "8462-4",
        "diastolic|bottom number|diastolic pressure",
        "diastolic blood pressure",
    ),
    ("heart rate", "8867-4", "pulse|pulse rate|heartbeat|hr|resting heart rate", "heart rate"),
    (
        "respiratory rate",
        "9279-1",
        "breathing rate|respiration rate|respirations|rr|respiration",
        "respiratory rate",
    ),
    ("body temperature", "8310-5 8331-1", "temperature|temp|fever|oral temperature", "temperature"),
    (
        "oxygen saturation",
        "2708-6 59408-5",
        "o2 sat|o2 saturation|spo2|pulse ox|pulse oximetry|oxygen level|oxygen sat|o2",
        "oxygen saturation",
    ),
    (
        "pain score",
        "72514-3",
        "pain level|pain severity|pain scale|pain rating|pain",
        "pain severity",
    ),
    (
        "body weight",
        "29463-7 3141-9",
        "weight|weigh|wt|how much do i weigh|weighed|weight reading",
        "body weight",
    ),
    ("body height", "8302-2 8306-3", "height|tall|how tall|ht|body length", "body height"),
    ("bmi", "39156-5 59576-9", "body mass index|bmi percentile", "body mass index"),
    ("head circumference", "9843-4 8289-1", "head size", "head occipital-frontal circumference"),
)
SURVEYS: Final = (
    (
        "depression score",
        "55758-7 44261-6 89204-2",
        "phq|phq 2|phq 9|phq2|phq9|depression screening score|depression questionnaire",
        "patient health questionnaire",
    ),
    (
        "anxiety score",
        "70274-6",
        "gad 7|gad7|anxiety screening score|anxiety questionnaire",
        "generalized anxiety disorder 7 item",
    ),
    (
        "alcohol use score",
        "75626-2",
        "audit c|alcohol use|alcohol|drinking|alcohol intake|how much do i drink",
        "audit-c",
    ),
    (
        "drug use score",
        "82667-7",
        "dast|dast 10|drug use|drug screening score|substance use",
        "dast-10",
    ),
    ("stress level", "93038-8", "stress score", "stress level"),
    ("fall risk", "59460-6 59461-4", "fall risk score|morse fall scale", "fall risk"),
)
# Synthea files smoking status under social-history; newer profiles use survey.
SOCIAL: Final = (
    (
        "smoking status",
        "72166-2",
        "smoking|smoke|smoker|smoked|tobacco|tobacco use|cigarette|cigarette smoking|vape|vaping"
        "|nicotine",
        "tobacco smoking status|smok|tobacco",
    ),
)
CONDITIONS: Final = (
    (
        "diabetes",
        "44054006 73211009 46635009 368581000119106 90781000119102 127013003",
        "diabetic|diabetes mellitus|type 2 diabetes|type 1 diabetes|t2dm|t1dm|dm|dm2|sugar diabetes"
        "|type ii diabetes",
        "diabetes",
        "diabetes medicine|hba1c|glucose",
    ),
    (
        "prediabetes",
        "15777000 714628002",
        "pre diabetes|prediabetic|borderline diabetes",
        "prediabetes",
        "hba1c|glucose",
    ),
    (
        "hyperglycemia",
        "80394007",
        "high blood sugar|hyperglycaemia",
        "hyperglycemia",
        "glucose|hba1c",
    ),
    (
        "hypertension",
        "59621000 38341003",
        "high blood pressure|htn|hypertensive|essential hypertension|elevated blood pressure",
        "hypertension",
        "antihypertensive|blood pressure",
    ),
    (
        "hyperlipidemia",
        "55822004 13644009 302870006",
        "high cholesterol|dyslipidemia|hypercholesterolemia|hypertriglyceridemia|high triglycerides"
        "|hyperlipidaemia",
        "hyperlipidemia|hypercholesterolemia|hypertriglyceridemia|dyslipidemia",
        "statin|lipid panel",
    ),
    ("metabolic syndrome", "237602007", "metabolic syndrome x|syndrome x", "metabolic syndrome"),
    (
        "obesity",
        "162864005 408512008 414916001 238136002",
        "obese|overweight|morbid obesity|severe obesity",
        "obesity|obese",
        "bmi|body weight",
    ),
    ("asthma", "195967001 233678006", "asthmatic|childhood asthma", "asthma", "inhaler"),
    (
        "copd",
        "13645005 185086009 87433001",
        "chronic obstructive pulmonary disease|chronic obstructive lung disease|emphysema"
        "|chronic bronchitis",
        "chronic obstructive|emphysema",
        "inhaler",
    ),
    (
        "chronic kidney disease",
        "709044004 431855005 431856006 433144002 431857002 46177005 127013003",
        "ckd|kidney disease|renal disease|kidney failure|renal failure|renal insufficiency"
        "|end stage renal disease|esrd",
        "kidney disease|renal disease",
        "creatinine|egfr",
    ),
    (
        "anemia",
        "271737000 87522002",
        "anaemia|anemic|low iron|iron deficiency|iron deficiency anemia",
        "anemia",
        "hemoglobin",
    ),
    (
        "atrial fibrillation",
        "49436004",
        "afib|a fib|af|irregular heartbeat|irregular heart rhythm",
        "atrial fibrillation",
        "anticoagulant",
    ),
    (
        "coronary heart disease",
        "53741008 414545008",
        "coronary artery disease|cad|chd|heart disease|ischemic heart disease"
        "|ischaemic heart disease",
        "coronary|ischemic heart",
        "statin|antiplatelet",
    ),
    (
        "myocardial infarction",
        "22298006 401303003 401314000 399211009",
        "heart attack|mi|stemi|nstemi",
        "myocardial infarction",
        "antiplatelet|statin",
    ),
    (
        "heart failure",
        "88805009 84114007",
        "chf|congestive heart failure|cardiac failure",
        "heart failure",
        "diuretic",
    ),
    (
        "stroke",
        "230690007",
        "cva|cerebrovascular accident|brain attack",
        "stroke|cerebrovascular",
        "antiplatelet|anticoagulant",
    ),
    (
        "depression",
        "35489007 370143000 36923009",
        "depressed|major depression|depressive disorder|mdd|clinical depression",
        "depressi",
        "antidepressant|depression score",
    ),
    (
        "anxiety",
        "197480006 80583007",
        "anxious|anxiety disorder|panic|panic attack|panic disorder|generalized anxiety",
        "anxiety|panic",
        "anxiolytic|anxiety score",
    ),
    ("stress", "73595000", "stressed|chronic stress", "stress (finding)", "stress level"),
    (
        "osteoarthritis",
        "396275006 239873007 239872002",
        "oa|degenerative joint disease|osteoarthritis of knee|osteoarthritis of hip",
        "osteoarthritis",
        "painkiller",
    ),
    ("rheumatoid arthritis", "69896004", "ra", "rheumatoid arthritis", "painkiller"),
    ("osteoporosis", "64859006", "brittle bones|bone loss", "osteoporosis"),
    (
        "sinusitis",
        "444814009 75498004 40055000 36971009",
        "sinus infection|viral sinusitis|sinus",
        "sinusitis",
        "antibiotic",
    ),
    ("bronchitis", "10509002", "acute bronchitis|chest cold", "bronchitis", "antibiotic"),
    (
        "pharyngitis",
        "195662009 43878008",
        "sore throat|strep throat|strep|viral pharyngitis|streptococcal sore throat",
        "pharyngitis|sore throat",
        "antibiotic",
    ),
    ("otitis media", "65363002", "ear infection|middle ear infection", "otitis", "antibiotic"),
    ("pneumonia", "233604007", "lung infection", "pneumonia", "antibiotic|pneumococcal vaccine"),
    (
        "urinary tract infection",
        "68566005 307426000 38822007",
        "uti|bladder infection|cystitis|urine infection",
        "cystitis|urinary tract infection",
        "antibiotic",
    ),
    (
        "migraine",
        "37796009",
        "migraine headache|headache|headaches",
        "migraine",
        "migraine medicine",
    ),
    (
        "allergic rhinitis",
        "446096008 232353008 61582004",
        "hay fever|seasonal allergy|rhinitis|perennial allergic rhinitis",
        "rhinitis",
        "antihistamine",
    ),
    (
        "hypothyroidism",
        "40930008",
        "underactive thyroid|low thyroid",
        "hypothyroidism",
        "thyroid medicine|tsh",
    ),
    ("gout", "90560007", "gouty arthritis", "gout"),
    ("sleep apnea", "73430006 78275009", "obstructive sleep apnea|osa|sleep apnoea", "sleep apnea"),
    (
        "dementia",
        "52448006 26929004",
        "alzheimer|alzheimers|alzheimers disease|memory loss",
        "dementia|alzheimer",
    ),
    (
        "epilepsy",
        "84757009 128613002",
        "seizure|seizures|seizure disorder|convulsion",
        "epilepsy|seizure",
        "antiepileptic",
    ),
    (
        "covid 19",
        "840539006",
        "covid|coronavirus|sars cov 2|covid infection",
        "covid",
        "covid vaccine",
    ),
    ("influenza", "6142004", "flu", "influenza (disorder)", "influenza vaccine"),
    ("shingles", "4740000", "herpes zoster|zoster", "herpes zoster|shingles", "zoster vaccine"),
    (
        "chickenpox",
        "38907003",
        "chicken pox|varicella infection",
        "chickenpox|varicella (disorder)",
        "varicella vaccine",
    ),
    (
        "fracture",
        "125605004 16114001 65966004 58150001 263102004 33737001 359817006",
        "broken bone|broken|fractured|broke",
        "fracture",
    ),
    ("sprain", "44465007 70704007 384709000", "sprained|sprained ankle|sprain of ankle", "sprain"),
    ("concussion", "110030002 62106007", "head injury|brain injury|tbi", "concussion"),
    ("laceration", "312608009 283371005 284551006", "deep cut|cut on|gash", "laceration"),
    ("gingivitis", "66383009 18718003", "gum disease|gingival disease|bleeding gums", "gingiv"),
    ("dental caries", "109570002 80967001", "cavity|tooth decay|caries|decay", "caries"),
    ("pregnancy", "72892002", "pregnant", "pregnan"),
    ("miscarriage", "19169002 156073000", "pregnancy loss|spontaneous abortion", "miscarriage"),
    (
        "adhd",
        "192127007",
        "attention deficit|attention deficit disorder",
        "attention deficit",
        "stimulant",
    ),
    (
        "drug misuse",
        "361055000",
        "drug abuse|substance abuse|drug addiction|substance use disorder",
        "misuses drugs|drug abuse",
    ),
    (
        "alcoholism",
        "7200002",
        "alcohol use disorder|alcohol abuse|alcohol dependence|alcoholic",
        "alcoholism|alcohol abuse",
    ),
    ("chronic pain", "82423001", "persistent pain", "chronic pain", "painkiller"),
    (
        "back pain",
        "279039007 278860009",
        "low back pain|lower back pain|chronic low back pain",
        "back pain",
        "painkiller",
    ),
    ("appendicitis", "74400008", "appendix", "appendicitis"),
    ("atopic dermatitis", "24079001", "eczema|dermatitis", "dermatitis|eczema"),
    ("breast cancer", "254837009", "breast tumor|malignant neoplasm of breast", "breast"),
    ("lung cancer", "254637007 424132000", "lung tumor|nsclc|small cell lung cancer", "lung"),
    ("colon cancer", "363406005", "colorectal cancer|bowel cancer|colon tumor", "colon"),
    ("prostate cancer", "126906006 399068003", "prostate tumor", "prostate"),
    (
        "neuropathy",
        "368581000119106",
        "diabetic neuropathy|nerve damage|peripheral neuropathy",
        "neuropathy",
    ),
)
# CVX codes keep Synthea's leading zeros ("03", "08").
VACCINES: Final = (
    (
        "influenza vaccine",
        "88 111 135 140 141 144 149 150 153 155 158 161 166 168 171 185 186 197 205",
        "flu shot|flu vaccine|flu jab|flu vaccination|flu immunization|influenza shot"
        "|influenza immunization|influenza vaccination|seasonal flu shot|flu shots",
        "influenza",
    ),
    (
        "covid vaccine",
        "207 208 210 211 212 213 217 218 219 221 228 229 230 300 301 302",
        "covid shot|covid 19 vaccine|covid vaccination|covid booster|coronavirus vaccine|covid jab"
        "|pfizer|moderna|booster shot",
        "covid|sars-cov-2",
    ),
    (
        "tetanus vaccine",
        "01 09 20 106 107 110 113 115 120 130 138 139 146",
        "tetanus|tetanus shot|tetanus booster|td|tdap|dtap|whooping cough vaccine|pertussis vaccine"
        "|diphtheria vaccine|tetanus jab",
        "tetanus|tdap|dtap|td (adult)",
    ),
    (
        "pneumococcal vaccine",
        "33 100 109 133 152 215 216",
        "pneumonia vaccine|pneumonia shot|pneumococcal|pneumococcal shot|pcv13|pcv 13|ppsv23"
        "|prevnar|pneumovax",
        "pneumococcal",
    ),
    (
        "zoster vaccine",
        "121 187 188",
        "shingles vaccine|shingles shot|shingrix|zostavax|zoster shot",
        "zoster",
    ),
    (
        "hepatitis b vaccine",
        "08 43 44 45 189",
        "hep b vaccine|hep b|hepatitis b|hepatitis b shot|hep b shot",
        "hep b",
    ),
    (
        "hepatitis a vaccine",
        "31 52 83 84 85",
        "hep a vaccine|hep a|hepatitis a|hepatitis a shot",
        "hep a",
    ),
    ("mmr vaccine", "03 94", "mmr|measles|mumps|rubella|measles vaccine|mmr shot", "mmr"),
    (
        "varicella vaccine",
        "21 94",
        "chickenpox vaccine|chicken pox vaccine|varicella|varivax",
        "varicella",
    ),
    ("hpv vaccine", "62 118 137 165", "hpv|gardasil|human papillomavirus vaccine|hpv shot", "hpv"),
    ("polio vaccine", "10 89 110 120 130 146", "polio|ipv|polio shot", "ipv|polio"),
    ("hib vaccine", "17 46 47 48 49 120 146 148", "hib|haemophilus influenzae type b", "hib"),
    (
        "meningococcal vaccine",
        "32 103 108 114 136 147 148 162 163 167 203",
        "meningitis vaccine|meningococcal|mcv4|menactra|bexsero",
        "meningococcal",
    ),
    ("rotavirus vaccine", "116 119 122", "rotavirus|rotateq|rotarix", "rotavirus"),
)
ALLERGENS: Final = (
    ("peanut allergy", "91935009 762952008", "peanut|peanuts|peanut allergy", "peanut"),
    ("latex allergy", "111088007 300916003", "latex", "latex"),
    (
        "animal dander allergy",
        "264287008 232347008",
        "dander|animal dander|cat dander|dog dander|pet dander|cat|dog|pet",
        "dander",
    ),
    ("tree pollen allergy", "782576004", "tree pollen", "tree pollen"),
    ("grass pollen allergy", "256277009", "grass pollen|grass", "grass pollen"),
    (
        "dust mite allergy",
        "260147004 232350006",
        "dust mite|dust mites|house dust mite|dust",
        "mite",
    ),
    ("mold allergy", "84489001 419474003", "mold|mould", "mold"),
    (
        "bee venom allergy",
        "288328004 424213003",
        "bee sting|bee venom|bee|wasp|insect sting",
        "bee",
    ),
    ("shellfish allergy", "300913006 44027008", "shellfish|shrimp|seafood", "shellfish|shrimp"),
    ("fish allergy", "417532002 227037002", "fish", "fish"),
    ("milk allergy", "425525006 3718001", "milk|dairy|cow milk|lactose", "milk"),
    ("egg allergy", "91930004 102263004", "egg|eggs", "egg"),
    ("wheat allergy", "420174000 412071004", "wheat|gluten", "wheat"),
    ("soy allergy", "782555009 67324005", "soy|soya|soybean", "soy"),
    ("tree nut allergy", "91934008 227493005", "tree nut|nuts|walnut|cashew|almond", "nut"),
)
PROCEDURES: Final = (
    ("colonoscopy", "73761001", "colon scope|colonoscopies", "colonoscopy"),
    ("mammogram", "71651007 24623002", "mammography|breast screening", "mammogra"),
    ("chest x ray", "399208008", "chest xray|chest radiograph|cxr", "x-ray of chest"),
    ("x ray", "168594001 1290459008 713024005 713026007 241046008", "xray|radiograph", "x-ray"),
    (
        "physical therapy",
        "91251008",
        "physiotherapy|pt session|physio",
        "physical therapy|physiotherapy",
    ),
    ("depression screening", "171207006 715252007", "depression screen", "depression screening"),
    (
        "dental cleaning",
        "1260009003 1260010008 234723000",
        "teeth cleaning|tooth cleaning|dental checkup|scaling",
        "plaque|dental",
    ),
    ("appendectomy", "80146002 6025007", "appendix removal|appendix removed", "appendectomy"),
    ("knee replacement", "609588000", "total knee replacement|knee arthroplasty", "knee"),
    ("hip replacement", "52734007", "total hip replacement|hip arthroplasty", "hip"),
    ("cesarean section", "11466000", "c section|caesarean|cesarean|c-section", "cesarean"),
    ("electrocardiogram", "29303009 268400002", "ecg|ekg|electrocardiography", "electrocardiogra"),
    ("pap smear", "90226004", "pap test|cervical smear|cervical screening", "smear"),
    ("allergy test", "395142003", "allergy testing|allergy screening|skin prick test", "allergy"),
    ("tuberculosis test", "28163009", "tb test|ppd|tb skin test", "tuberculosis"),
    ("pregnancy test", "252160004", "hcg test", "pregnancy test"),
    ("sutures", "288086009", "stitches|suture|stitched", "suture"),
    (
        "medication reconciliation",
        "430193006",
        "med rec|medication review",
        "medication reconciliation",
    ),
)
ENCOUNTERS: Final = (
    (
        "emergency visit",
        "50849002 183460006",
        "er|emergency room|emergency|er visit|emergency department|ed visit|emergency admission",
        "emergency",
    ),
    (
        "hospital admission",
        "32485007 183495009 305408004 305428000",
        "hospital stay|hospitalization|hospitalized|hospitalised|admitted|inpatient|admission",
        "hospital admission|inpatient",
    ),
    (
        "checkup",
        "185349003 162673000 410620009",
        "check up|physical|physical exam|annual physical|wellness visit|annual exam|well visit"
        "|general exam|routine exam|well child visit",
        "check up|general examination|well child",
    ),
    (
        "prenatal visit",
        "424619006 424441002",
        "prenatal|prenatal care|antenatal visit|pregnancy checkup",
        "prenatal",
    ),
)
# Drug classes: (name, lay phrases, member ingredients and brands as they appear in RxNorm
# displays, lower-case). Members also become single-drug concepts of their own.
DRUG_CLASSES: Final = (
    (
        "anticoagulant",
        "anticoagulants|anti coagulant|anticoagulation|blood thinning medication",
        "warfarin|apixaban|rivaroxaban|dabigatran|edoxaban|heparin|enoxaparin|dalteparin"
        "|fondaparinux|coumadin|eliquis|xarelto|pradaxa|lovenox",
    ),
    (
        "antiplatelet",
        "antiplatelets|anti platelet|antiplatelet agent",
        "clopidogrel|prasugrel|ticagrelor|dipyridamole|aspirin 81|plavix|brilinta",
    ),
    (
        "diuretic",
        "water pill|fluid pill|diuretics",
        "hydrochlorothiazide|chlorthalidone|furosemide|spironolactone|bumetanide|torsemide"
        "|triamterene|indapamide|metolazone|eplerenone|lasix|hctz",
    ),
    (
        "statin",
        "cholesterol medicine|cholesterol medication|cholesterol pill|cholesterol drug"
        "|cholesterol med|cholesterol lowering",
        "atorvastatin|simvastatin|rosuvastatin|pravastatin|lovastatin|pitavastatin|fluvastatin"
        "|ezetimibe|lipitor|crestor|zocor",
    ),
    (
        "antihypertensive",
        "blood pressure medicine|blood pressure medication|blood pressure pill|blood pressure med"
        "|bp med|bp medication|bp medicine|hypertension medicine|hypertension medication"
        "|antihypertensive drug",
        "lisinopril|enalapril|ramipril|benazepril|captopril|quinapril|losartan|valsartan|irbesartan"
        "|olmesartan|candesartan|telmisartan|amlodipine|nifedipine|diltiazem|verapamil|metoprolol"
        "|atenolol|carvedilol|propranolol|bisoprolol|nebivolol|labetalol|hydralazine|clonidine"
        "|hydrochlorothiazide|chlorthalidone",
    ),
    (
        "ace inhibitor",
        "ace inhibitors|acei|ace i",
        "lisinopril|enalapril|ramipril|benazepril|captopril|quinapril|fosinopril|perindopril",
    ),
    (
        "arb",
        "angiotensin receptor blocker|angiotensin ii receptor blocker|arbs",
        "losartan|valsartan|irbesartan|olmesartan|candesartan|telmisartan",
    ),
    (
        "beta blocker",
        "beta blockers|beta adrenergic blocker",
        "metoprolol|atenolol|carvedilol|propranolol|bisoprolol|nebivolol|labetalol",
    ),
    (
        "calcium channel blocker",
        "calcium channel blockers|ccb",
        "amlodipine|nifedipine|diltiazem|verapamil|felodipine",
    ),
    (
        "diabetes medicine",
        "diabetes medication|diabetes med|diabetic medication|diabetes pill|sugar pill"
        "|sugar medicine|antidiabetic|glucose lowering|blood sugar medicine",
        "metformin|insulin|glipizide|glyburide|glimepiride|sitagliptin|saxagliptin|linagliptin"
        "|liraglutide|semaglutide|dulaglutide|exenatide|empagliflozin|canagliflozin|dapagliflozin"
        "|pioglitazone|humulin|humalog|lantus|novolog|januvia|ozempic|jardiance|victoza|trulicity",
    ),
    (
        "antibiotic",
        "antibiotics|abx|antibacterial",
        "amoxicillin|penicillin|ampicillin|cefuroxime|cephalexin|cefdinir|ceftriaxone|cefaclor"
        "|azithromycin|clarithromycin|erythromycin|doxycycline|minocycline|tetracycline"
        "|ciprofloxacin|levofloxacin|moxifloxacin|nitrofurantoin|sulfamethoxazole|trimethoprim"
        "|clindamycin|metronidazole|vancomycin|augmentin|zithromax",
    ),
    (
        "painkiller",
        "pain killer|pain medicine|pain medication|pain med|pain reliever|analgesic|pain pill",
        "acetaminophen|ibuprofen|naproxen|aspirin|diclofenac|celecoxib|meloxicam|oxycodone"
        "|hydrocodone|morphine|fentanyl|tramadol|codeine|meperidine|hydromorphone|tylenol|advil"
        "|motrin|aleve",
    ),
    (
        "nsaid",
        "nsaids|anti inflammatory|antiinflammatory",
        "ibuprofen|naproxen|diclofenac|celecoxib|meloxicam|aspirin|ketorolac|indomethacin",
    ),
    (
        "opioid",
        "opioids|narcotic|narcotics|opiate",
        "oxycodone|hydrocodone|morphine|fentanyl|tramadol|codeine|meperidine|hydromorphone"
        "|buprenorphine|methadone|tapentadol|oxycontin|percocet|vicodin",
    ),
    (
        "inhaler",
        "inhalers|puffer|asthma medicine|asthma medication|copd medicine|bronchodilator"
        "|rescue inhaler|nebulizer",
        "albuterol|fluticasone|budesonide|salmeterol|formoterol|tiotropium|ipratropium|montelukast"
        "|beclomethasone|mometasone|ventolin|advair|symbicort|spiriva|inhaler|inhalation",
    ),
    (
        "antidepressant",
        "antidepressants|depression medicine|depression medication|ssri|snri",
        "sertraline|fluoxetine|citalopram|escitalopram|paroxetine|venlafaxine|duloxetine|bupropion"
        "|mirtazapine|trazodone|amitriptyline|nortriptyline|zoloft|prozac|lexapro|wellbutrin",
    ),
    (
        "anxiolytic",
        "anxiety medicine|anxiety medication|benzodiazepine|benzo|benzos",
        "alprazolam|lorazepam|diazepam|clonazepam|buspirone|xanax|ativan|valium|klonopin",
    ),
    (
        "contraceptive",
        "birth control|contraception|the pill|birth control pill|oral contraceptive|iud"
        "|contraceptive implant",
        "levonorgestrel|norethindrone|ethinyl estradiol|etonogestrel|medroxyprogesterone"
        "|norgestimate|drospirenone|desogestrel|mestranol|norethynodrel|28 day pack|intrauterine"
        "|mirena|nexplanon|camila|jolivette|ortho tri-cyclen|norinyl|yaz|kyleena|liletta|natazia"
        "|trinessa|seasonique",
    ),
    (
        "antihistamine",
        "antihistamines|allergy medicine|allergy medication|allergy pill|allergy med",
        "loratadine|cetirizine|fexofenadine|diphenhydramine|levocetirizine|claritin|zyrtec|allegra"
        "|benadryl",
    ),
    (
        "migraine medicine",
        "migraine medication|headache medicine|triptan",
        "sumatriptan|rizatriptan|zolmitriptan|topiramate|imitrex",
    ),
    (
        "thyroid medicine",
        "thyroid medication|thyroid hormone|thyroid pill",
        "levothyroxine|liothyronine|synthroid",
    ),
    (
        "antiepileptic",
        "seizure medicine|seizure medication|anticonvulsant|antiseizure",
        "levetiracetam|phenytoin|carbamazepine|lamotrigine|valproate|valproic acid|topiramate"
        "|gabapentin|keppra",
    ),
    (
        "steroid",
        "steroids|corticosteroid|corticosteroids",
        "prednisone|prednisolone|methylprednisolone|dexamethasone|hydrocortisone",
    ),
    (
        "acid reducer",
        "heartburn medicine|acid reflux medicine|ppi|proton pump inhibitor|antacid",
        "omeprazole|pantoprazole|esomeprazole|lansoprazole|famotidine|ranitidine|prilosec|nexium",
    ),
    (
        "stimulant",
        "adhd medicine|adhd medication",
        "methylphenidate|amphetamine|dextroamphetamine|lisdexamfetamine|ritalin|adderall|vyvanse",
    ),
    ("epinephrine", "epipen|epi pen|adrenaline|epinephrine auto injector", "epinephrine"),
)
# Brand names that name one ingredient: folded into that ingredient's concept.
BRANDS: Final = {
    "coumadin": "warfarin",
    "eliquis": "apixaban",
    "xarelto": "rivaroxaban",
    "pradaxa": "dabigatran",
    "lovenox": "enoxaparin",
    "plavix": "clopidogrel",
    "brilinta": "ticagrelor",
    "lasix": "furosemide",
    "hctz": "hydrochlorothiazide",
    "lipitor": "atorvastatin",
    "crestor": "rosuvastatin",
    "zocor": "simvastatin",
    "januvia": "sitagliptin",
    "ozempic": "semaglutide",
    "jardiance": "empagliflozin",
    "victoza": "liraglutide",
    "trulicity": "dulaglutide",
    "humulin": "insulin",
    "humalog": "insulin",
    "lantus": "insulin",
    "novolog": "insulin",
    "augmentin": "amoxicillin",
    "zithromax": "azithromycin",
    "tylenol": "acetaminophen",
    "paracetamol": "acetaminophen",
    "advil": "ibuprofen",
    "motrin": "ibuprofen",
    "aleve": "naproxen",
    "oxycontin": "oxycodone",
    "percocet": "oxycodone",
    "vicodin": "hydrocodone",
    "ventolin": "albuterol",
    "salbutamol": "albuterol",
    "zoloft": "sertraline",
    "prozac": "fluoxetine",
    "lexapro": "escitalopram",
    "wellbutrin": "bupropion",
    "xanax": "alprazolam",
    "ativan": "lorazepam",
    "valium": "diazepam",
    "klonopin": "clonazepam",
    "claritin": "loratadine",
    "zyrtec": "cetirizine",
    "allegra": "fexofenadine",
    "benadryl": "diphenhydramine",
    "imitrex": "sumatriptan",
    "synthroid": "levothyroxine",
    "keppra": "levetiracetam",
    "prilosec": "omeprazole",
    "nexium": "esomeprazole",
    "ritalin": "methylphenidate",
    "adderall": "amphetamine",
    "vyvanse": "lisdexamfetamine",
    "glucophage": "metformin",
    "norvasc": "amlodipine",
    "zestril": "lisinopril",
    "prinivil": "lisinopril",
    "cozaar": "losartan",
    "lopressor": "metoprolol",
    "toprol": "metoprolol",
}
# Class members that are forms or packs, not ingredients; members with digits or hyphens
# ("aspirin 81", "ortho tri-cyclen") are skipped by _INGREDIENT_RE as well.
NOT_INGREDIENTS: Final = frozenset({"inhaler", "inhalation", "intrauterine"})
_INGREDIENT_RE: Final = re.compile(r"[a-z]+(?: [a-z]+)?")
# Lay phrases that name several concepts at once.
GROUP_PHRASES: Final = {
    "blood sugar": ("glucose", "hba1c"),
    "sugar": ("glucose", "hba1c"),
    "sugar level": ("glucose", "hba1c"),
    "sugar test": ("hba1c", "glucose"),
    "blood sugar test": ("hba1c", "glucose"),
    "diabetes test": ("hba1c", "glucose"),
    "diabetes screening": ("hba1c", "glucose"),
    "kidney function": ("creatinine", "egfr", "urea nitrogen"),
    "kidney test": ("creatinine", "egfr", "urea nitrogen"),
    "kidney lab": ("creatinine", "egfr", "urea nitrogen"),
    "renal function": ("creatinine", "egfr", "urea nitrogen"),
    "liver function": ("alt", "ast", "alkaline phosphatase", "bilirubin", "albumin"),
    "liver test": ("alt", "ast", "alkaline phosphatase", "bilirubin", "albumin"),
    "liver enzyme": ("alt", "ast", "alkaline phosphatase"),
    "lft": ("alt", "ast", "alkaline phosphatase", "bilirubin", "albumin"),
    "electrolyte": ("sodium", "potassium", "chloride", "carbon dioxide"),
    "blood thinner": ("anticoagulant", "antiplatelet"),
    "thinner": ("anticoagulant", "antiplatelet"),
    "arthritis": ("osteoarthritis", "rheumatoid arthritis"),
    "cancer": ("breast cancer", "lung cancer", "colon cancer", "prostate cancer"),
    "tumor": ("breast cancer", "lung cancer", "colon cancer", "prostate cancer"),
    "malignancy": ("breast cancer", "lung cancer", "colon cancer", "prostate cancer"),
    "pollen": ("tree pollen allergy", "grass pollen allergy"),
    "thyroid": ("tsh", "hypothyroidism"),
}
# Cue phrases: (phrases, resource types, categories).
RESOURCE_CUES: Final = (
    (
        "lab|lab result|lab test|lab work|labwork|laboratory|laboratory result|blood test"
        "|blood work|bloodwork|blood draw|test|test result|result|level|panel|lab value",
        OBSERVATION,
        (LAB_CATEGORY,),
    ),
    ("vital|vital sign|vitals check", OBSERVATION, (VITAL_CATEGORY,)),
    ("reading|measurement|observation|value", OBSERVATION, ()),
    (
        "survey|questionnaire|screening score|score|assessment score",
        OBSERVATION,
        (SURVEY_CATEGORY,),
    ),
    ("social history|lifestyle", OBSERVATION, (SOCIAL_CATEGORY, SURVEY_CATEGORY)),
    (
        "condition|diagnosis|diagnoses|diagnosed|dx|problem|problem list|disease|illness|disorder"
        "|medical condition|health condition|health problem|medical problem|medical history"
        "|past medical history|chronic condition|comorbidity",
        ("Condition",),
        (),
    ),
    (
        "medication|medicine|med|drug|prescription|prescribed|prescribe|rx|taking|pill|tablet"
        "|capsule|refill|am i on|am i currently on|am i still on|is the patient on"
        "|is patient on|is pt on|is the pt on|is he on|is she on|are you on|are they on|was i on"
        "|was the patient on|were you on|been on|put on|started on|im on|i am on|currently on"
        "|still on|do i take|does the patient take|does pt take|do you take|did i take"
        "|what do i take",
        MEDICATION_TYPES,
        (),
    ),
    (
        "allergy|allergic|allergen|intolerance|adverse reaction|allergic reaction|drug allergy"
        "|food allergy|reaction",
        ("AllergyIntolerance",),
        (),
    ),
    (
        "vaccine|vaccination|vaccinated|immunization|immunisation|immunized|immunised|shot|jab"
        "|booster|inoculation|vax|imms",
        ("Immunization",),
        (),
    ),
    (
        "visit|encounter|appointment|appt|admission|admitted|seen|hospital|hospitalized"
        "|hospitalised|hospitalization|hospital stay|er|emergency|emergency room|er visit"
        "|urgent care|checkup|check up|physical|physical exam|wellness visit|annual exam"
        "|see the doctor|see a doctor|see my doctor|saw the doctor|saw a doctor|went to the doctor"
        "|doctor visit|office visit|consultation|consult|discharged|inpatient|outpatient|telehealth"
        "|clinic",
        ("Encounter",),
        (),
    ),
    ("procedure|surgery|surgical|operation|operated|surgeries|operated on", ("Procedure",), ()),
    (
        "imaging|scan|mri|ct|ct scan|cat scan|pet scan|ultrasound|radiology|imaging study",
        ("ImagingStudy", "Procedure"),
        (),
    ),
    (
        "report|diagnostic report|lab report|pathology report|radiology report",
        ("DiagnosticReport",),
        (),
    ),
    ("care plan|plan of care|treatment plan|careplan|management plan", ("CarePlan",), ()),
    ("goal|health goal|treatment goal", ("Goal",), ()),
    (
        "note|document|clinical note|progress note|discharge summary|visit note|doctor note"
        "|doctor say|doctor said|doctor wrote|doctors note",
        ("DocumentReference",),
        (),
    ),
    (
        "age|how old|born|birthday|birth date|date of birth|dob|gender|sex|my name|patient name"
        "|full name|address|phone number|race|ethnicity|language|marital status|married|deceased"
        "|alive|died|date of death",
        ("Patient",),
        (),
    ),
    (
        "care team|careteam|primary care physician|primary care provider|pcp|primary care doctor",
        ("CareTeam", "Practitioner"),
        (),
    ),
    ("device|implant|medical device|pacemaker", ("Device",), ()),
    (
        "insurance|coverage|insured|claim|bill|billing|cost|payer|copay|out of pocket",
        ("Coverage", "Claim", "ExplanationOfBenefit"),
        (),
    ),
)
# Concept phrases that also name a record kind (smoking is asked about as a kind).
CONCEPT_CUES: Final = {"smoking status": Cue(OBSERVATION, (SOCIAL_CATEGORY, SURVEY_CATEGORY))}


# --- building the index ------------------------------------------------------------------------

_WORD_RE = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """Lower-case words of ``text``; apostrophes vanish ("Alzheimer's" → "alzheimers")."""
    return _WORD_RE.findall(text.lower().replace("’", "").replace("'", ""))


def fold(word: str) -> str:
    """Fold a plural onto its singular: "allergies" → "allergy", "labs" → "lab".

    Deliberately crude and applied to both questions and phrases, so it only has to be
    consistent, not correct ("diabetes" → "diabete" on both sides still matches).
    """
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _key(phrase: str) -> tuple[str, ...]:
    return tuple(fold(w) for w in words(phrase))


def _split(cell: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in cell.split("|") if part.strip())


def _row_concept(
    row: tuple[str, ...], kind: str, system: str, types: tuple[str, ...], category: str | None
) -> Concept:
    """A concept from one table row: name, codes, phrases, terms[, related]."""
    name, codes, phrases, terms = row[:4]
    return Concept(
        name=name,
        kind=kind,
        system=system,
        codes=frozenset(codes.split()),
        terms=_split(terms),
        synonyms=(name, *_split(phrases)),
        resource_types=types,
        category=category,
        related=_split(row[4]) if len(row) > 4 else (),
    )


def _drug_concepts() -> list[Concept]:
    """One concept per drug class, then one per member ingredient (brands folded in)."""
    classes = [
        Concept(
            name,
            "drug_class",
            "RxNorm",
            frozenset(),
            _split(members),
            (name, *_split(phrases)),
            MEDICATION_TYPES,
        )
        for name, phrases, members in DRUG_CLASSES
    ]
    taken = {c.name for c in classes} | set(BRANDS) | NOT_INGREDIENTS
    ingredients = dict.fromkeys(
        m for c in classes for m in c.terms if m not in taken and _INGREDIENT_RE.fullmatch(m)
    )
    drugs = []
    for ingredient in ingredients:
        names = (ingredient, *(b for b, i in BRANDS.items() if i == ingredient))
        drugs.append(
            Concept(ingredient, "drug", "RxNorm", frozenset(), names, names, MEDICATION_TYPES)
        )
    return classes + drugs


def _build_concepts() -> tuple[Concept, ...]:
    concepts = [
        *(_row_concept(r, "lab", "LOINC", OBSERVATION, LAB_CATEGORY) for r in LABS),
        *(
            _row_concept(r, "panel", "LOINC", (*OBSERVATION, "DiagnosticReport"), LAB_CATEGORY)
            for r in PANELS
        ),
        *(_row_concept(r, "vital", "LOINC", OBSERVATION, VITAL_CATEGORY) for r in VITALS),
        *(_row_concept(r, "survey", "LOINC", OBSERVATION, SURVEY_CATEGORY) for r in SURVEYS),
        *(_row_concept(r, "social", "LOINC", OBSERVATION, SOCIAL_CATEGORY) for r in SOCIAL),
        *(_row_concept(r, "condition", "SNOMED", ("Condition",), None) for r in CONDITIONS),
        *(_row_concept(r, "vaccine", "CVX", ("Immunization",), None) for r in VACCINES),
        *(_row_concept(r, "allergen", "SNOMED", ("AllergyIntolerance",), None) for r in ALLERGENS),
        *(_row_concept(r, "procedure", "SNOMED", ("Procedure",), None) for r in PROCEDURES),
        *(_row_concept(r, "encounter", "SNOMED", ("Encounter",), None) for r in ENCOUNTERS),
        *_drug_concepts(),
    ]
    return tuple(concepts)


@dataclass(frozen=True)
class _Entry:
    concepts: tuple[str, ...] = ()
    cue: Cue | None = None
    # Last words as the tables spell them: "diabetes" is listed, so it is not a plural.
    forms: frozenset[str] = frozenset()


def _merge(
    index: dict[tuple[str, ...], _Entry],
    phrase: str,
    concepts: tuple[str, ...] = (),
    cue: Cue | None = None,
) -> None:
    """Add ``phrase`` to the index; two meanings for one phrase is a bug in the tables."""
    key = _key(phrase)
    old = index.get(key, _Entry())
    if concepts and old.concepts and old.concepts != concepts:
        raise ValueError(f"lexicon phrase {phrase!r} names both {old.concepts} and {concepts}")
    if cue and old.cue and old.cue != cue:
        raise ValueError(f"lexicon phrase {phrase!r} is a cue for two kinds of record")
    form = words(phrase)[-1]
    index[key] = _Entry(concepts or old.concepts, cue or old.cue, old.forms | {form})


def _check_names(concepts: tuple[Concept, ...]) -> None:
    """Every name a table refers to must exist: a typo would silently drop a concept."""
    names = {c.name for c in concepts}
    if len(names) != len(concepts):
        raise ValueError("lexicon concept names must be unique")
    refs = [r for c in concepts for r in c.related] + [n for g in GROUP_PHRASES.values() for n in g]
    refs += [*CONCEPT_CUES, *BRANDS.values()]
    missing = sorted(set(refs) - names)
    if missing:
        raise ValueError(f"lexicon tables refer to unknown concepts: {missing}")


def _build_index() -> dict[tuple[str, ...], _Entry]:
    _check_names(CONCEPTS)
    index: dict[tuple[str, ...], _Entry] = {}
    for concept in CONCEPTS:
        for phrase in concept.synonyms:
            _merge(index, phrase, (concept.name,), CONCEPT_CUES.get(concept.name))
    for phrase, names in GROUP_PHRASES.items():
        _merge(index, phrase, names)
    for phrases, types, categories in RESOURCE_CUES:
        for phrase in _split(phrases):
            _merge(index, phrase, cue=Cue(types, categories))
    return index


CONCEPTS: Final = _build_concepts()
CONCEPTS_BY_NAME: Final = {c.name: c for c in CONCEPTS}
_INDEX: Final = _build_index()
_MAX_WORDS: Final = max(len(key) for key in _INDEX)


# --- resolving types and categories ------------------------------------------------------------

# Cue types that only set the scene ("my A1c at my last visit"): concepts keep their types.
CONTEXT_TYPES: Final = frozenset(
    {
        "Encounter",
        "Patient",
        "DocumentReference",
        "CareTeam",
        "Practitioner",
        "Coverage",
        "Claim",
        "ExplanationOfBenefit",
    }
)
_OBSERVATION_TYPES: Final = frozenset({"Observation", "DiagnosticReport"})


def _ordered_union(groups: Iterable[Iterable[str]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for group in groups for item in group))


def resolve_types(matches: Sequence[Match]) -> tuple[str, ...]:
    """The resource types that ``matches`` ask for, cue types first.

    A cue names the kind of record and overrides the types its concepts would imply
    ("allergic to penicillin" asks for allergies, not prescriptions), unless every cue only
    gives context ("my A1c at my last visit" still asks for the A1c observation). Concepts
    that fit a cued type bring their sibling types (lipid panel → reports as well).
    """
    cue_types = _ordered_union(m.cue.resource_types for m in matches if m.cue)
    concept_types = _ordered_union(c.resource_types for m in matches for c in m.concepts)
    if not cue_types:
        return concept_types
    if all(t in CONTEXT_TYPES for t in cue_types):
        return _ordered_union((cue_types, concept_types))
    fitting = [
        c.resource_types
        for m in matches
        for c in m.concepts
        if set(c.resource_types) & set(cue_types)
    ]
    return _ordered_union((cue_types, *fitting))


def resolve_categories(
    matches: Sequence[Match], concepts: Iterable[Concept], types: Sequence[str]
) -> tuple[str, ...]:
    """Observation categories from cues and concepts; none when no observations are asked."""
    if types and not _OBSERVATION_TYPES & set(types):
        return ()
    cues = (m.cue.categories for m in matches if m.cue)
    own = ((c.category,) for c in concepts if c.category and "Observation" in c.resource_types)
    return _ordered_union((*cues, *own))


# --- lookups ---------------------------------------------------------------------------------


def get_concept(name: str) -> Concept:
    """The concept called ``name``; :class:`NotFoundError` names close matches otherwise."""
    try:
        return CONCEPTS_BY_NAME[name]
    except KeyError:
        close = difflib.get_close_matches(name, CONCEPTS_BY_NAME, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise NotFoundError(f"unknown concept {name!r}{hint}") from None


def scan(text: str) -> list[Match]:
    """Every known phrase of ``text``, left to right, the longest one at each position."""
    raw = words(text)
    folded = [fold(w) for w in raw]
    found: list[Match] = []
    i = 0
    while i < len(folded):
        for n in range(min(_MAX_WORDS, len(folded) - i), 0, -1):
            entry = _INDEX.get(tuple(folded[i : i + n]))
            if entry is not None:
                concepts = tuple(CONCEPTS_BY_NAME[c] for c in entry.concepts)
                last = raw[i + n - 1]
                plural = last != folded[i + n - 1] and last not in entry.forms
                found.append(Match(" ".join(raw[i : i + n]), i, i + n, concepts, entry.cue, plural))
                i += n
                break
        else:
            i += 1
    return found


def find_concepts(text: str) -> list[Concept]:
    """Concepts named in ``text``, in order of mention, each once."""
    seen: dict[str, Concept] = {}
    for match in scan(text):
        for concept in match.concepts:
            seen.setdefault(concept.name, concept)
    return list(seen.values())


def find_resource_types(text: str) -> tuple[str, ...]:
    """FHIR resource types ``text`` asks for ("vaccines" → Immunization, "BMI" → Observation)."""
    return resolve_types(scan(text))


def find_categories(text: str) -> tuple[str, ...]:
    """Observation categories ``text`` asks for ("labs" → laboratory, "BMI" → vital-signs)."""
    matches = scan(text)
    concepts = [c for m in matches for c in m.concepts]
    return resolve_categories(matches, concepts, resolve_types(matches))
