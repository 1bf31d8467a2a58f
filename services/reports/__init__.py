"""What providers read: the patient summary, the panel of their patients, and the CSV and FHIR exports."""
