"""The builtin `varied-text` corpus: text unlike `sentences`, for judging fidelity.

`builtin://sentences` is tidy English prose of one or two clauses; a quantized encoder
tuned on it can look better there than on what users send. This corpus is the opposite:
code, logs, queries, URLs, numbers, chat, headlines, long paragraphs, German and Spanish,
and one-word lines. Compression never fits anything on it (no calibration, no smoothing,
no search choice): it is for measuring only, so its figures are honest held-out figures.
Shipped as Python source for the same reason as `sentences` (no package data).
"""

from __future__ import annotations

VARIED_TEXT: tuple[str, ...] = (
    # one word, or almost
    "Yes.",
    "refund",
    "Kubernetes",
    "ok",
    "Danke!",
    "404",
    "¿Dónde?",
    "lol 😂😂",
    # code, logs, queries, markup
    "def forward(self, x): return self.proj(torch.relu(self.fc(x)))",
    "SELECT user_id, COUNT(*) FROM orders WHERE created_at > NOW() - INTERVAL '7 days' "
    "GROUP BY user_id;",
    "2026-11-30T04:12:55Z ERROR pod/api-7f9c restart count 14: OOMKilled (limit 512Mi)",
    "kubectl rollout undo deployment/checkout --to-revision=3 -n shop",
    "Traceback (most recent call last): File \"main.py\", line 12, in <module> KeyError: 'id'",
    '<div class="price">€19.99 <span>incl. VAT</span></div>',
    '{"event": "login", "user": 8812, "ip": "10.0.4.17", "success": false}',
    "https://example.com/search?q=int8+quantization&page=2#results",
    "git commit -m 'fix flaky test' && git push origin main --force-with-lease",
    "    at com.example.Service.handle(Service.java:214) ~[app.jar:1.4.2]",
    # numbers, units, tables
    "Q3 revenue: $4.2B (+12% YoY), operating margin 31.5%, EPS $1.07 vs $0.98 est.",
    "Dose: 500 mg every 8 h for 10 days; max 4 g/day. Do not exceed.",
    "| region | p50 ms | p99 ms |\n| eu-west | 12 | 88 |\n| us-east | 9 | 61 |",
    "Flight LH 1234 FRA→LIS departs 07:35, gate B44, seat 23C.",
    "3.14159 2.71828 1.41421 1.73205 0.57721",
    # chat, reviews, headlines, shouting, typos
    "omg the delivery guy left my package in the rain AGAIN, sooo done with this app",
    "Would not recommend. Arrived broken, support never answered my three emails.",
    "5 stars!!! best ramen in town, the broth is unreal 🍜",
    "BREAKING: Parliament rejects budget in late-night vote; government faces confidence test",
    "URGENT!!! YOUR ACCOUNT WILL BE SUSPENDED. CLICK HERE TO VERIFY NOW",
    "can u send me teh slides from yesterdays meeting pls",
    "Thx, that fixed it. Closing the ticket.",
    "Anyone know if the 14:20 bus still runs on Sundays?",
    # domains far from everyday prose
    "The patient presented with acute dyspnea, bilateral crackles and an ejection fraction "
    "of 30 %.",
    "Notwithstanding clause 7.2, the Licensee shall indemnify the Licensor against all claims "
    "arising from third-party use.",
    "The eigenvalues of a Hermitian matrix are real, and its eigenvectors can be chosen "
    "orthonormal.",
    "Add the roux gradually, whisking constantly, until the béchamel coats the back of a spoon.",
    "Knight to f3, bishop takes on c4, and white castles kingside on move nine.",
    "Mitochondrial DNA is inherited maternally and mutates faster than nuclear DNA.",
    "The Fed held rates at 4.25\u20134.50 %, citing sticky services inflation and a cooling labour "
    "market.",
    "Lift the bonnet, check the coolant level, and top up with a 50/50 antifreeze mix.",
    # German
    "Der Zug nach München fällt heute wegen eines Stellwerkschadens aus.",
    "Bitte schließen Sie die Tür, bevor Sie das Gerät einschalten.",
    "Ich habe keine Ahnung, wo ich meinen Schlüssel hingelegt habe.",
    "Die Regierung plant, die Förderung für Wärmepumpen im nächsten Jahr zu kürzen.",
    "Kann man hier mit Karte zahlen?",
    # Spanish
    "El partido se suspendió por la lluvia y se jugará el próximo miércoles.",
    "Necesito cambiar la contraseña de mi cuenta, pero no recibo el correo.",
    "La biblioteca municipal abre de nueve a ocho, excepto los domingos.",
    "¿Cuánto cuesta un billete de ida y vuelta a Sevilla?",
    "Los investigadores hallaron microplásticos en la nieve de los Pirineos.",
    # long paragraphs (close to the 128-token cut)
    "When we migrated the billing service from a single Postgres instance to a sharded "
    "cluster, we underestimated how many reports joined across customers; for two weeks "
    "the finance team ran their month-end queries against a read replica we kept alive "
    "for them, while we rewrote every report to aggregate per shard and merge the partial "
    "results in the application, which turned out to be faster than the original joins.",
    "The hikers had planned a gentle three-day loop through the valley, but a landslide "
    "had closed the lower trail, so they climbed the ridge instead, crossed two snowfields "
    "they had not expected in June, and reached the hut long after dark, tired, soaked, "
    "and very glad that the warden had kept the stove burning for them.",
    "Under the proposed regulation, providers of general-purpose models would have to "
    "publish a summary of their training data, document the energy used for training, "
    "report serious incidents within fifteen days, and keep technical documentation "
    "available to national authorities for ten years after the model is placed on the "
    "market.",
    "Mix the flour, yeast and salt, add the water slowly, knead for ten minutes until the "
    "dough is smooth and elastic, let it rise for an hour in a warm place, knock it back, "
    "shape it into a loaf, prove it again for forty minutes, and bake at 220 degrees for "
    "about half an hour until it sounds hollow when tapped underneath.",
    # lists and fragments
    "milk, eggs, 2x sourdough, spinach, oat milk (unsweetened), batteries AA",
    "TODO: rotate keys; bump deps; re-run e2e; ping @maria re: invoice #4471",
    "Pros: light, quiet, long battery. Cons: glossy screen, only two USB-C ports.",
    "Step 1 — unplug. Step 2 — wait 30 s. Step 3 — plug back in.",
    "N/A",
    "...",
)
