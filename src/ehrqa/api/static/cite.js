// Citations in answer text: "[Observation/abc]", "[Observation/a, Condition/b]",
// "[doc:diabetes-type-2#3]" and "[file:note.txt#2]" (pure functions, no DOM).

// The FHIR R4 resource types: "[Mass/volume]" in a LOINC name is a unit, not a citation.
const FHIR_TYPES = new Set(
  (
    "Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment AppointmentResponse " +
    "AuditEvent Basic Binary BiologicallyDerivedProduct BodyStructure Bundle CapabilityStatement " +
    "CarePlan CareTeam CatalogEntry ChargeItem ChargeItemDefinition Claim ClaimResponse " +
    "ClinicalImpression CodeSystem Communication CommunicationRequest CompartmentDefinition " +
    "Composition ConceptMap Condition Consent Contract Coverage CoverageEligibilityRequest " +
    "CoverageEligibilityResponse DetectedIssue Device DeviceDefinition DeviceMetric DeviceRequest " +
    "DeviceUseStatement DiagnosticReport DocumentManifest DocumentReference EffectEvidenceSynthesis " +
    "Encounter Endpoint EnrollmentRequest EnrollmentResponse EpisodeOfCare EventDefinition Evidence " +
    "EvidenceVariable ExampleScenario ExplanationOfBenefit FamilyMemberHistory Flag Goal " +
    "GraphDefinition Group GuidanceResponse HealthcareService ImagingStudy Immunization " +
    "ImmunizationEvaluation ImmunizationRecommendation ImplementationGuide InsurancePlan Invoice " +
    "Library Linkage List Location Measure MeasureReport Media Medication MedicationAdministration " +
    "MedicationDispense MedicationKnowledge MedicationRequest MedicationStatement MedicinalProduct " +
    "MedicinalProductAuthorization MedicinalProductContraindication MedicinalProductIndication " +
    "MedicinalProductIngredient MedicinalProductInteraction MedicinalProductManufactured " +
    "MedicinalProductPackaged MedicinalProductPharmaceutical MedicinalProductUndesirableEffect " +
    "MessageDefinition MessageHeader MolecularSequence NamingSystem NutritionOrder Observation " +
    "ObservationDefinition OperationDefinition OperationOutcome Organization OrganizationAffiliation " +
    "Parameters Patient PaymentNotice PaymentReconciliation Person PlanDefinition Practitioner " +
    "PractitionerRole Procedure Provenance Questionnaire QuestionnaireResponse RelatedPerson " +
    "RequestGroup ResearchDefinition ResearchElementDefinition ResearchStudy ResearchSubject " +
    "RiskAssessment RiskEvidenceSynthesis Schedule SearchParameter ServiceRequest Slot Specimen " +
    "SpecimenDefinition StructureDefinition StructureMap Subscription Substance SubstanceNucleicAcid " +
    "SubstancePolymer SubstanceProtein SubstanceReferenceInformation SubstanceSourceMaterial " +
    "SubstanceSpecification SupplyDelivery SupplyRequest Task TerminologyCapabilities TestReport " +
    "TestScript ValueSet VerificationResult VisionPrescription"
  ).split(" "),
);
const RECORD_REF = /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/;
const CHUNK_REF = /^(doc|file):[^\]\s]+#\d+$/;
const BRACKETED = /\[([^[\]\n]{1,600})\]/g;

/** What a reference points at: "record", "doc", "file", or null when it is no reference. */
export function refKind(ref) {
  if (RECORD_REF.test(ref)) return FHIR_TYPES.has(ref.split("/")[0]) ? "record" : null;
  const chunk = CHUNK_REF.exec(ref);
  return chunk ? chunk[1] : null;
}

/**
 * Split text into segments: {text} for plain text and {refs: [...]} for a bracketed list
 * of references. Brackets holding anything else ("[mm/Hg]", "[3]") stay text.
 */
export function splitCitations(text) {
  const segments = [];
  let last = 0;
  for (const match of String(text).matchAll(BRACKETED)) {
    const refs = match[1].split(/[,;]/).map((part) => part.trim());
    if (!refs.every((ref) => refKind(ref) !== null)) continue;
    if (match.index > last) segments.push({ text: text.slice(last, match.index) });
    segments.push({ refs });
    last = match.index + match[0].length;
  }
  if (last < text.length) segments.push({ text: text.slice(last) });
  return segments;
}

/** The API path that shows a reference, or null when there is none (file paragraphs). */
export function refPath(ref) {
  const kind = refKind(ref);
  if (kind === "record") {
    const [type, id] = ref.split("/");
    return `/v1/records/${encodeURIComponent(type)}/${encodeURIComponent(id)}`;
  }
  if (kind === "doc") return `/v1/docs/chunks/${encodeURIComponent(ref.slice(4))}`;
  return null;
}

/**
 * A readable value of a FHIR resource ("7.1 %", "Positive", "120 mm[Hg] / 80 mm[Hg]"), or "";
 * `unitText` rewrites each unit (the patient view passes the reader's spelling: "mmHg").
 */
export function resourceValue(resource, unitText = (unit) => unit) {
  if (!resource || typeof resource !== "object") return "";
  const quantity = resource.valueQuantity;
  if (quantity && quantity.value !== undefined) {
    return [quantity.value, unitText(quantity.unit || quantity.code)].filter((v) => v !== undefined && v !== "").join(" ");
  }
  const concept = resource.valueCodeableConcept;
  if (concept) return concept.text || ((concept.coding || [])[0] || {}).display || "";
  for (const key of ["valueString", "valueBoolean", "valueInteger", "valueDateTime"]) {
    if (resource[key] !== undefined) return String(resource[key]);
  }
  if (Array.isArray(resource.component)) {
    return resource.component.map((part) => resourceValue(part, unitText)).filter(Boolean).join(" / ");
  }
  return "";
}
