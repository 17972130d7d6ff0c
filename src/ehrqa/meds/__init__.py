"""Medication safety, below the layers that answer questions: the patient context a check
reads (``context``), the drug tables drawn from the knowledge files (``drugs``) and the
checks of a drug against allergies, current medicines, kidney function and problems
(``safety``). Records QA ("can he take ibuprofen?", ``select``) and decision support
(``cds``) both use them."""
