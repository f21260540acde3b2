"""Word lists and fixed catalogues of the demo businesses (names, places, plans, event types).

Everything here is constant data; the generator draws from it with seeded numpy generators, so
the demo needs no fake-data library and stays byte-for-byte reproducible across versions.
"""

from __future__ import annotations

# --- places -------------------------------------------------------------------------------------

REGIONS = ("en", "de", "fr", "es", "pt", "it", "north", "in", "jp")
"""Name regions; every country below names the region its people's names come from."""

COUNTRIES: tuple[tuple[str, str, str, str, float], ...] = (
    # (ISO country, IANA time zone, name region, legal suffix, weight)
    ("US", "America/New_York", "en", "Inc.", 0.11),
    ("US", "America/Chicago", "en", "LLC", 0.07),
    ("US", "America/Denver", "en", "Inc.", 0.03),
    ("US", "America/Los_Angeles", "en", "Inc.", 0.09),
    ("CA", "America/Toronto", "en", "Inc.", 0.04),
    ("CA", "America/Vancouver", "en", "Ltd.", 0.02),
    ("GB", "Europe/London", "en", "Ltd", 0.10),
    ("IE", "Europe/Dublin", "en", "Ltd", 0.02),
    ("DE", "Europe/Berlin", "de", "GmbH", 0.09),
    ("AT", "Europe/Vienna", "de", "GmbH", 0.02),
    ("FR", "Europe/Paris", "fr", "SAS", 0.06),
    ("ES", "Europe/Madrid", "es", "S.L.", 0.04),
    ("MX", "America/Mexico_City", "es", "S.A. de C.V.", 0.02),
    ("PT", "Europe/Lisbon", "pt", "Lda.", 0.02),
    ("BR", "America/Sao_Paulo", "pt", "Ltda.", 0.04),
    ("IT", "Europe/Rome", "it", "S.r.l.", 0.03),
    ("NL", "Europe/Amsterdam", "north", "B.V.", 0.04),
    ("SE", "Europe/Stockholm", "north", "AB", 0.02),
    ("PL", "Europe/Warsaw", "north", "Sp. z o.o.", 0.02),
    ("IN", "Asia/Kolkata", "in", "Pvt. Ltd.", 0.04),
    ("SG", "Asia/Singapore", "en", "Pte. Ltd.", 0.02),
    ("AU", "Australia/Sydney", "en", "Pty Ltd", 0.04),
    ("JP", "Asia/Tokyo", "jp", "K.K.", 0.02),
)

# fmt: off
FIRST_NAMES: dict[str, tuple[str, ...]] = {
    "en": (
        "James", "Olivia", "Liam", "Emma", "Noah", "Ava", "Ethan", "Sophia", "Mason", "Isabella",
        "Lucas", "Mia", "Henry", "Amelia", "Jack", "Harper", "Owen", "Ella", "Daniel", "Grace",
        "Samuel", "Chloe", "Ryan", "Zoe", "Nathan", "Lily", "Caleb", "Hannah", "Aaron", "Nora",
    ),
    "de": (
        "Lukas", "Anna", "Jonas", "Lea", "Felix", "Laura", "Maximilian", "Marie", "Paul", "Julia",
        "Leon", "Sophie", "Tobias", "Katharina", "Florian", "Lena", "Moritz", "Johanna", "Jan",
        "Miriam",
    ),
    "fr": (
        "Louis", "Camille", "Hugo", "Manon", "Arthur", "Chloe", "Jules", "Ines", "Gabriel",
        "Lea", "Raphael", "Margaux", "Antoine", "Juliette", "Theo", "Clara", "Mathis", "Elise",
        "Victor", "Amandine",
    ),
    "es": (
        "Alejandro", "Lucia", "Pablo", "Sofia", "Diego", "Martina", "Javier", "Paula", "Carlos",
        "Elena", "Sergio", "Carmen", "Mateo", "Valeria", "Andres", "Isabel", "Jorge", "Natalia",
        "Miguel", "Ana",
    ),
    "pt": (
        "Joao", "Beatriz", "Pedro", "Mariana", "Tiago", "Ana", "Rafael", "Carolina", "Gustavo",
        "Larissa", "Bruno", "Fernanda", "Diogo", "Ines", "Rodrigo", "Camila", "Vitor", "Leticia",
        "Andre", "Raquel",
    ),
    "it": (
        "Marco", "Giulia", "Luca", "Francesca", "Matteo", "Chiara", "Alessandro", "Sara",
        "Lorenzo", "Martina", "Davide", "Elisa", "Simone", "Valentina", "Andrea", "Federica",
        "Riccardo", "Alessia", "Stefano", "Silvia",
    ),
    "north": (
        "Daan", "Emma", "Sem", "Julia", "Lars", "Astrid", "Erik", "Ingrid", "Mats", "Freja",
        "Piotr", "Agnieszka", "Tomasz", "Katarzyna", "Bram", "Sanne", "Oskar", "Elin", "Jakub",
        "Zuzanna",
    ),
    "in": (
        "Aarav", "Ananya", "Vihaan", "Diya", "Arjun", "Priya", "Rohan", "Kavya", "Aditya",
        "Isha", "Karan", "Meera", "Rahul", "Neha", "Vikram", "Pooja", "Sanjay", "Riya", "Amit",
        "Sneha",
    ),
    "jp": (
        "Haruto", "Yui", "Sota", "Hina", "Ren", "Aoi", "Yuto", "Sakura", "Kaito", "Mei", "Riku",
        "Yuna", "Takumi", "Akari", "Daiki", "Misaki", "Kenta", "Nanami", "Shota", "Ayaka",
    ),
}

LAST_NAMES: dict[str, tuple[str, ...]] = {
    "en": (
        "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor",
        "Anderson", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris",
        "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green", "Baker",
        "Adams", "Nelson", "Campbell",
    ),
    "de": (
        "Mueller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
        "Schulz", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Schwarz",
        "Zimmermann", "Braun", "Hartmann", "Lange",
    ),
    "fr": (
        "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
        "Leroy", "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David",
        "Bertrand", "Roux", "Vincent", "Fournier",
    ),
    "es": (
        "Garcia", "Rodriguez", "Gonzalez", "Fernandez", "Lopez", "Martinez", "Sanchez", "Perez",
        "Gomez", "Martin", "Jimenez", "Ruiz", "Hernandez", "Diaz", "Moreno", "Alvarez", "Romero",
        "Navarro", "Torres", "Ramirez",
    ),
    "pt": (
        "Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa", "Rodrigues", "Martins",
        "Souza", "Almeida", "Carvalho", "Gomes", "Ribeiro", "Lima", "Araujo", "Barbosa",
        "Rocha", "Teixeira", "Moreira", "Cardoso",
    ),
    "it": (
        "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
        "Marino", "Greco", "Bruno", "Gallo", "Conti", "DeLuca", "Mancini", "Costa", "Giordano",
        "Rizzo", "Lombardi", "Moretti",
    ),
    "north": (
        "DeJong", "Jansen", "Visser", "Bakker", "Andersson", "Johansson", "Karlsson", "Nilsson",
        "Lindberg", "Nowak", "Kowalski", "Wisniewski", "Wojcik", "Kaminski", "Mulder", "Smit",
        "Berg", "Holm", "Dekker", "Lewandowski",
    ),
    "in": (
        "Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Nair", "Mehta", "Joshi",
        "Rao", "Das", "Chopra", "Malhotra", "Bose", "Kapoor", "Menon", "Agarwal", "Pillai",
        "Verma",
    ),
    "jp": (
        "Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura",
        "Kobayashi", "Kato", "Yoshida", "Yamada", "Sasaki", "Yamaguchi", "Matsumoto", "Inoue",
        "Kimura", "Hayashi", "Shimizu", "Mori",
    ),
}

# Brand names are two parts glued together ("Blue" + "field" = "Bluefield"): 1,600 brands.
BRAND_HEADS = (
    "Blue", "Silver", "Bright", "Stone", "Oak", "North", "Red", "Green", "Gold", "Iron", "Clear",
    "High", "Sun", "Moon", "Star", "River", "Lake", "Maple", "Pine", "Cedar", "Fox", "Hawk",
    "Wolf", "Bear", "Elm", "Ash", "Birch", "Copper", "Crystal", "Summit", "East", "West",
    "South", "Harbor", "Meadow", "Willow", "Amber", "Coral", "Frost", "Storm",
)
BRAND_TAILS = (
    "field", "peak", "line", "bridge", "wood", "ridge", "stone", "gate", "brook", "haven",
    "crest", "point", "works", "wave", "light", "spring", "view", "dale", "mark", "leaf",
    "port", "rock", "side", "vale", "way", "wind", "shore", "hill", "forge", "path", "star",
    "water", "land", "burn", "cliff", "ford", "glen", "moor", "cove", "tide",
)

# fmt: on

# --- SaaS business ------------------------------------------------------------------------------

INDUSTRIES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    # (industry, weight, company-name nouns)
    ("software", 0.16, ("Software", "Labs", "Systems", "Digital", "Technologies", "Cloud")),
    ("retail", 0.12, ("Retail", "Stores", "Outfitters", "Market", "Goods", "Supply")),
    ("finance", 0.09, ("Capital", "Finance", "Advisors", "Partners", "Wealth", "Accounting")),
    ("education", 0.08, ("Academy", "Learning", "Education", "School", "Tutoring", "Institute")),
    (
        "manufacturing",
        0.09,
        ("Manufacturing", "Industries", "Engineering", "Fabrication", "Components", "Machines"),
    ),
    ("marketing", 0.10, ("Media", "Marketing", "Creative", "Studio", "Agency", "Brands")),
    ("travel", 0.09, ("Travel", "Tours", "Voyages", "Journeys", "Expeditions", "Getaways")),
    ("hospitality", 0.08, ("Hotels", "Hospitality", "Resorts", "Inns", "Dining", "Suites")),
    ("healthcare", 0.10, ("Health", "Clinics", "Medical", "Care", "Therapeutics", "Diagnostics")),
    ("delivery", 0.09, ("Logistics", "Delivery", "Couriers", "Express", "Freight", "Dispatch")),
)
CRISIS_INDUSTRIES = ("travel", "hospitality")
THRIVING_INDUSTRIES = ("healthcare", "delivery")
CRISIS_MONTHS_BEFORE_END = 8

OWNERS = (
    "ana.silva@keepwell-demo.test",
    "ben.carter@keepwell-demo.test",
    "chloe.martin@keepwell-demo.test",
    "david.kim@keepwell-demo.test",
    "emma.schulz@keepwell-demo.test",
    "farid.haddad@keepwell-demo.test",
    "grace.okafor@keepwell-demo.test",
    "hugo.lambert@keepwell-demo.test",
)

PLANS = ("starter", "pro", "business", "enterprise")
PLAN_PRICE_MINOR = (2_900, 9_900, 29_900, 99_900)
"""Monthly list price per plan in cents; annual billing is 12 months at 20% off."""
ANNUAL_DISCOUNT = 0.20
PLAN_SHARES = (0.46, 0.31, 0.17, 0.06)
PLAN_SEATS = ((1.5, 0.5), (5.0, 0.5), (16.0, 0.5), (70.0, 0.6))
"""Seats per plan: lognormal (median, sigma)."""
CURRENCY_SAAS = "USD"

PERSONAS: tuple[tuple[str, float, float], ...] = (
    # (persona, share, mean latent health)
    ("champion", 0.16, 1.0),
    ("steady", 0.40, 0.45),
    ("casual", 0.29, 0.0),
    ("struggling", 0.15, -0.6),
)
HABITS = ("daily", "weekly", "monthly", "rarely")
"""Usage-frequency classes; "rarely" = less than monthly (the forgotten zone)."""
HABIT_BY_PERSONA = (
    (0.70, 0.25, 0.04, 0.01),
    (0.30, 0.48, 0.17, 0.05),
    (0.12, 0.38, 0.32, 0.18),
    (0.05, 0.25, 0.38, 0.32),
)
HABIT_DAY_PROB = (0.8, 0.22, 0.055, 0.018)
"""Chance to use the product on a given day at latent health 0, per habit."""

ACQUISITION_CHANNELS = ("organic", "paid_search", "referral", "partner", "outbound", "event")
ACQUISITION_SHARES = (0.34, 0.22, 0.16, 0.08, 0.12, 0.08)
EMPLOYEE_BANDS = ("1-10", "11-50", "51-200", "201-1000", "1000+")

SAAS_EVENTS = (
    "login",
    "dashboard_view",
    "report_created",
    "comment",
    "export",
    "invite_sent",
    "integration_sync",
    "api_call",
    "alert_configured",
    "file_uploaded",
)
"""Usage event types; ``login`` opens every session, the rest follow the customer's adoption."""
SAAS_EVENT_POPULARITY = (0.0, 1.0, 0.55, 0.45, 0.3, 0.15, 0.35, 0.3, 0.12, 0.2)
SYSTEM_EVENTS = ("integration_sync", "api_call")
"""Event types without a user (machine traffic)."""

EVENT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "report_created": (
        '{"report_type":"revenue"}',
        '{"report_type":"pipeline"}',
        '{"report_type":"usage"}',
        '{"report_type":"custom"}',
    ),
    "export": ('{"format":"csv"}', '{"format":"xlsx"}', '{"format":"pdf"}'),
    "integration_sync": (
        '{"integration":"salesforce"}',
        '{"integration":"hubspot"}',
        '{"integration":"slack"}',
        '{"integration":"google_sheets"}',
    ),
    "api_call": ('{"endpoint":"/v1/records"}', '{"endpoint":"/v1/reports"}'),
    "alert_configured": ('{"channel":"email"}', '{"channel":"slack"}'),
    "file_uploaded": ('{"type":"csv"}', '{"type":"pdf"}', '{"type":"image"}'),
}

CANCEL_REASONS = {
    "usage_decline": ("not using it enough", "switched to a competitor", "no longer needed"),
    "payment_failure": ("billing problems", "too expensive"),
    "detractor": ("unhappy with the product", "missing features", "poor support"),
    "low_adoption": ("too hard to set up", "not using it enough", "missing features"),
    "crisis": ("budget cuts", "business closed", "budget cuts"),
    "support": ("poor support", "too many bugs"),
    "random": ("too expensive", "company acquired", "switched to a competitor", "other"),
    "trial_expired": ("trial_expired",),
}
FAILURE_REASONS = ("card_declined", "insufficient_funds", "expired_card", "authentication_required")

TICKET_SUBJECTS = (
    "Cannot export report to Excel",
    "How do I invite more users?",
    "Salesforce sync shows errors",
    "Dashboard loads slowly",
    "Question about our invoice",
    "SSO login fails for some users",
    "API rate limit reached",
    "Charts show wrong totals",
    "Need help setting up alerts",
    "Feature request: custom fields in reports",
    "Data missing after import",
    "Please update our billing address",
)
URGENT_SUBJECTS = (
    "URGENT: nobody on our team can log in",
    "Data loss after yesterday's sync",
    "Reports are down before our board meeting",
    "We were charged twice",
)

NPS_COMMENTS = {
    "promoter": (
        "Saves our team hours every week.",
        "Great product and very responsive support.",
        "The reports are exactly what our managers need.",
        "Easy to use, we rolled it out to the whole team.",
    ),
    "passive": (
        "Good, but the exports could be faster.",
        "Does the job; pricing is a bit high for us.",
        "Solid, would like more integrations.",
    ),
    "detractor": (
        "Too expensive for what we use.",
        "We hardly use it any more.",
        "Support took days to answer.",
        "Missing the features we need.",
        "Setup was confusing and nobody helped.",
    ),
}
OPEN_ANSWERS = (
    "A mobile app would help our field staff.",
    "More templates for monthly reporting, please.",
    "Better onboarding for new team members.",
    "Cheaper plan for small teams.",
    "Native integration with our accounting tool.",
)

# --- shop business ------------------------------------------------------------------------------

SHOP_CATEGORIES: tuple[tuple[str, float, float], ...] = (
    # (category, share, typical item price in euros)
    ("apparel", 0.24, 35.0),
    ("shoes", 0.12, 70.0),
    ("accessories", 0.12, 25.0),
    ("home", 0.14, 40.0),
    ("beauty", 0.14, 20.0),
    ("electronics", 0.08, 120.0),
    ("kids", 0.08, 22.0),
    ("sports", 0.08, 45.0),
)
CURRENCY_SHOP = "EUR"
SHOP_EVENTS = (
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "wishlist_add",
    "checkout_started",
    "purchase",
)
SHOP_PERSONAS: tuple[tuple[str, float], ...] = (
    ("loyal", 0.15),
    ("regular", 0.35),
    ("occasional", 0.35),
    ("one_off", 0.15),
)
SHOP_TAGS = ("newsletter", "vip", "app_user")
FREEMAIL = ("mailbox.example", "inbox.example", "postbox.example", "webmail.example")
