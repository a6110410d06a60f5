"""The builtin `sentences` corpus: a few hundred varied English sentences.

It backs `builtin://sentences`: text for measuring how far a compressed sentence encoder
drifts from the original (cosine of embeddings) and for calibrating quantization. It is
shipped as Python source rather than a data file so that it travels with the package
without package-data configuration, and it never changes at run time (deterministic).
"""

from __future__ import annotations

_CORPUS = """
The quick brown fox jumps over the lazy dog.
Kubernetes schedules pods onto nodes according to their resource requests.
She sold seashells by the seashore every summer morning.
Quantization shrinks a model by storing its weights in fewer bits.
The central bank raised interest rates again to curb inflation.
My grandmother bakes the best apple pie in the whole village.
Photosynthesis turns sunlight, water and carbon dioxide into sugar and oxygen.
The train to Berlin was delayed by forty minutes because of heavy snow.
He forgot his umbrella and got soaked on the walk home.
Neural networks learn useful representations from large amounts of data.
The museum reopened to the public after a two-year renovation.
Please remember to water the plants while I am away.
A volcano erupted off the coast, sending a column of ash into the sky.
The orchestra tuned their instruments before the concert began.
Our startup is hiring backend engineers who know Python and Go.
The referee showed a red card in the final minute of the match.
Honey never spoils if it is kept in a sealed jar.
The doctor advised the patient to rest and drink plenty of fluids.
Stock prices fell sharply after the disappointing earnings report.
The children built a sandcastle with four towers and a moat.
Mars is home to Olympus Mons, the largest volcano in the solar system.
I cannot believe how expensive coffee has become lately.
The library extends its opening hours during exam season.
A gentle breeze carried the scent of lilacs through the open window.
Encryption keeps data unreadable to anyone without the key.
The chef recommends pairing the fish with a dry white wine.
Heavy rain flooded several low-lying neighbourhoods overnight.
The new phone has a better camera but a shorter battery life.
Ancient Romans built aqueducts to carry fresh water into their cities.
He practises the violin for two hours every evening.
The committee will announce its decision next Tuesday.
Glaciers in the Alps are retreating faster than scientists predicted.
Where did you put the keys to the garden shed?
The recipe calls for two cups of flour and a pinch of salt.
After the storm, the fishermen repaired their nets on the pier.
Solar panels on the roof now cover most of the house's electricity needs.
The lawyer argued that the contract had never been signed.
Birds migrate south when the days grow shorter.
She finished the marathon in just under four hours.
The server crashed because the disk ran out of space.
A good night's sleep improves memory and concentration.
The bakery on the corner sells fresh bread from six in the morning.
Scientists discovered a new species of frog in the rainforest.
The meeting was postponed until everyone could attend.
Tides are caused mainly by the gravitational pull of the moon.
He apologised for arriving late to the interview.
The city council approved a plan to build more bicycle lanes.
Our flight was cancelled, so we spent the night at the airport.
The telescope revealed thousands of galaxies in a tiny patch of sky.
Vaccines train the immune system to recognise a pathogen.
The kitten chased a ball of yarn across the kitchen floor.
Compilers translate source code into machine instructions.
The hikers reached the summit just before sunset.
Inflation erodes the purchasing power of savings over time.
She painted the fence white and the door a deep blue.
The database index made the query a hundred times faster.
Every autumn the maple trees turn brilliant shades of red.
He read the instructions twice before assembling the bookshelf.
The river burst its banks after a week of rain.
Customers complained that the website was slow during the sale.
The violinist received a standing ovation.
Lightning struck the old oak tree in the park last night.
Regular exercise lowers the risk of heart disease.
The detective noticed a faint footprint near the window.
Our team shipped the new feature two days ahead of schedule.
Penguins cannot fly, but they are excellent swimmers.
The price of train tickets will rise in January.
I would like a table for two by the window, please.
The satellite sends images of the weather back to Earth every hour.
Bees play a vital role in pollinating crops.
The novel tells the story of a family across three generations.
The power went out during the thunderstorm.
Gradient descent adjusts the weights to reduce the loss.
The farmer harvested wheat before the rain arrived.
He speaks four languages fluently, including Japanese.
The bridge was closed for repairs all summer.
A balanced diet includes fruit, vegetables, grains and protein.
The startup raised ten million dollars in its first funding round.
Snow covered the mountains well into May.
The teacher asked the students to write an essay about their hometown.
The printer on the third floor is out of toner again.
Whales communicate with songs that travel for miles underwater.
The exhibition features paintings from the early twentieth century.
Load balancers spread incoming requests across many servers.
We watched the fireworks from the rooftop.
The ancient manuscript was written on parchment.
Traffic was light because of the public holiday.
The pharmacist explained how often to take the medicine.
Coral reefs are threatened by rising ocean temperatures.
The spacecraft landed safely on the surface of the moon.
Do you know whether the museum is open on Mondays?
The company reported record profits for the third quarter.
Her garden is full of tomatoes, beans and sunflowers.
The earthquake damaged hundreds of buildings in the region.
A firewall filters network traffic according to a set of rules.
The puppy slept through the whole car journey.
The soup needs a little more salt and some pepper.
Thousands of people marched through the capital on Saturday.
The professor's lecture on black holes was fascinating.
Backups are useless unless you test that they can be restored.
The airline lost my suitcase on the way to Lisbon.
The old lighthouse still guides ships into the harbour.
He planted an apple tree the year his daughter was born.
The factory switched to renewable energy last year.
The crowd cheered as the home team scored the winning goal.
Wolves were reintroduced to the national park in the nineties.
The software update fixed a serious security vulnerability.
She keeps a diary and writes in it every night.
Interest in electric cars has grown rapidly.
The restaurant was so noisy that we could hardly talk.
The river delta is an important habitat for migrating birds.
Our neighbours are renovating their kitchen, and the drilling starts at eight.
The map showed a hidden path through the forest.
Caching frequently used results can greatly reduce latency.
The baby took her first steps on Sunday afternoon.
The parliament passed a new law on data protection.
Sea levels are rising as the polar ice melts.
A single typo in the configuration file brought the service down.
The gallery sold the sculpture for a record price.
He makes his own pasta from scratch every Sunday.
The hospital opened a new wing for children.
The desert gets extremely cold at night.
My laptop overheats when I run too many programs at once.
The orchestra will perform Beethoven's ninth symphony tonight.
Cats spend a large part of the day asleep.
The ferry crosses the strait twice a day in winter.
The research team published its findings in a leading journal.
Could you send me the slides from yesterday's presentation?
Wind turbines now generate a large share of the country's power.
The knight rode through the gates of the castle at dawn.
The marketing campaign doubled the number of subscribers.
Our cat knocked a glass of water off the table.
The old mill by the stream has been turned into a hotel.
Transformers use attention to weigh the relevance of each word.
The football season starts in August.
She was promoted to head of the engineering department.
The drought has left the reservoirs almost empty.
The students built a small robot that can sort coloured blocks.
A cup of tea and a good book make a perfect rainy afternoon.
The bank's mobile app lets you freeze a lost card instantly.
The volcano has been dormant for more than a thousand years.
The town celebrates its founding with a parade every June.
He fixed the leaking tap with a new washer.
Memory leaks slowly consume the available RAM until the process dies.
The bookstore hosts a reading club on the first Thursday of the month.
Rainforests produce a significant part of the world's oxygen.
We missed the last bus and had to walk back to the hotel.
The chess champion defended her title for the third time.
Voters will elect a new mayor in November.
The bread rose beautifully in the warm kitchen.
Astronomers detected water vapour in the atmosphere of a distant planet.
The mechanic said the brakes needed replacing.
Our office moved to a larger building downtown.
The pianist practised the difficult passage over and over.
Containers package an application together with its dependencies.
The storm forced the ships to stay in port.
She learned to ride a bicycle when she was five.
The government announced new measures to support small businesses.
Fresh snow squeaked under our boots.
The algorithm sorts a million numbers in under a second.
The zoo welcomed a baby giraffe this spring.
I need to renew my passport before the trip.
The castle walls are more than three metres thick.
The fashion show featured clothes made from recycled plastic.
A sudden gust of wind blew the hat off his head.
The clinic offers free health checks for older residents.
Rust prevents many memory errors at compile time.
The festival attracts musicians from all over the world.
He keeps bees in three hives at the bottom of the garden.
The price of gold reached a new high this week.
The children were excited about the school trip to the aquarium.
The pipeline retries a failed step up to three times.
Autumn leaves crunched underfoot as we walked through the park.
The airline introduced direct flights to Seoul.
She wrote her thesis on the history of medieval trade routes.
The kettle whistled and the smell of toast filled the room.
Deforestation threatens the habitat of the orangutan.
The train was so crowded that we had to stand all the way.
The software engineer reviewed the pull request carefully.
Fog rolled in from the sea and covered the town.
The athletes trained at high altitude before the championship.
Our internet connection drops every evening around nine.
The poet read aloud from her latest collection.
Farmers are worried about the late frost.
The team celebrated the launch with pizza and cake.
The new vaccine proved effective in clinical trials.
He was born in a small village at the foot of the mountains.
The supermarket stopped selling plastic bags.
Sharks have existed for longer than trees.
The court ruled in favour of the tenants.
She borrowed three books about sailing from the library.
The model's accuracy dropped after the data distribution changed.
The clock tower chimed midnight as we left the party.
The region is famous for its cheese and red wine.
A friendly dog followed us all the way to the beach.
The firefighters rescued a family from the burning building.
The conference will take place online this year.
The moon looked enormous as it rose over the hills.
Our landlord finally agreed to fix the heating.
The volunteers cleaned up the litter along the river.
Each microservice owns its own database.
The explorer crossed the desert on a camel.
The museum guide told us stories about each painting.
The cost of living has risen faster than wages.
He sprained his ankle playing basketball.
The garden party was moved indoors because of the rain.
Electric buses are quieter and cleaner than diesel ones.
The archive contains letters dating back to the sixteenth century.
The app sends a reminder an hour before each appointment.
Children learn languages more easily than adults.
The jazz band played late into the night.
A strong earthquake shook the city early this morning.
She ordered a vegetarian curry with rice and naan.
The river freezes over in the coldest winters.
Unit tests catch bugs before they reach production.
The hotel room had a wonderful view of the harbour.
The bicycle chain came off halfway up the hill.
The mayor opened the new playground with a short speech.
Dolphins are known for their intelligence and playful behaviour.
The report will be ready by the end of the week.
The lake is perfect for swimming in July.
The cyclist wore a bright jacket to be seen in the dark.
Scientists are studying how sleep affects learning.
The shop offers a discount to students on Wednesdays.
The old car broke down on the motorway.
We planted tulip bulbs in October for the spring.
The economy grew by two percent last year.
The violin was made in Italy three hundred years ago.
An hour of walking burns more calories than you might expect.
The monitoring system paged the on-call engineer at three in the morning.
Please turn off the lights when you leave the room.
The documentary follows a family of elephants across the savannah.
The border crossing took much longer than expected.
The quarterly results exceeded analysts' expectations.
The cathedral took more than two centuries to build.
My sister is learning to play the drums, much to the neighbours' dismay.
The spring rain brought the desert flowers into bloom.
The hackathon produced several promising prototypes.
The soldiers returned home after six months abroad.
A ripe avocado yields slightly to gentle pressure.
The committee rejected the proposal by a narrow margin.
The ice cream melted before we reached the car.
Large language models predict the next word from the words before it.
The ferry was cancelled because of high winds.
He collects stamps from countries that no longer exist.
The school introduced a four-day week as an experiment.
The forest fire spread quickly in the dry conditions.
Our grandparents met at a dance in nineteen fifty-six.
The surgeon performed the operation with a robotic arm.
Is there a pharmacy open near here at this hour?
The harvest festival fills the square with music and food stalls.
Replication keeps a copy of the data on several machines.
The toddler refused to eat anything green.
The ship's captain announced that we would arrive an hour early.
The painting was stolen from the museum in broad daylight.
Warm ocean currents keep the coastal climate mild.
The startup pivoted from games to education software.
The choir sang carols in the town square.
The kids spent the afternoon flying kites on the hill.
The insurance company refused to pay for the damage.
Migrating geese flew over the house in a perfect V.
The lecture hall was packed for the Nobel laureate's talk.
Sourdough bread needs a long, slow fermentation.
The new law requires companies to report their emissions.
The laptop battery lasts about eight hours on a single charge.
A rainbow appeared after the afternoon shower.
The historian argued that the treaty had been misunderstood.
The tennis match lasted nearly five hours.
We rented a small cottage by the lake for the summer.
The operator restarts the pod when its health check fails.
Owls hunt at night using their excellent hearing.
The company recalled thousands of cars because of a faulty airbag.
The student asked a question that stumped the whole class.
The city is famous for its canals and narrow streets.
A cold front will bring showers and cooler temperatures tomorrow.
Good morning!
It is raining again.
Thanks for your help.
The meeting is cancelled.
I love this song.
Where is the station?
Dinner is ready.
Never give up.
The cat is asleep.
See you tomorrow.
"""

# Long sentences (written as pieces to keep lines short).
_LONG = (
    (
        "Although the forecast had promised a dry weekend, a band of heavy rain swept in from the "
        "west on Saturday morning, flooding the campsite and sending dozens of families back home "
        "early."
    ),
    (
        "When the first version of the service went live, nobody expected the traffic to triple "
        "within a month, so the team spent the summer rewriting the storage layer and adding caches"
        " in front of every slow query."
    ),
    (
        "My grandfather, who worked as a ship's engineer for forty years, still tells stories about"
        " storms in the North Atlantic and the night the engine failed a hundred miles from the "
        "nearest port."
    ),
    (
        "To keep the model small enough for the phone, the engineers pruned half of its neurons, "
        "stored the remaining weights in eight bits, and checked that its answers barely changed on"
        " a held-out test set."
    ),
    (
        "The museum's new wing, designed by a young architect from Porto, uses natural light so "
        "cleverly that visitors often stop in the corridors just to watch the shadows move across "
        "the stone floor."
    ),
    (
        "After three failed attempts and a long winter of training, the climbers finally reached "
        "the summit at dawn, took a few photographs, and began the slow and dangerous descent "
        "before the weather turned."
    ),
    (
        "If you want to reproduce the experiment, fix the random seed, pin the library versions, "
        "record the hardware you used, and keep the raw data next to the scripts that produced "
        "every figure in the paper."
    ),
    (
        "The old market hall, closed for a decade after a fire, has reopened with stalls selling "
        "cheese, bread, fish and flowers, and on Friday evenings local bands play on a small stage "
        "near the fountain."
    ),
)

SENTENCES: tuple[str, ...] = (
    *(line for line in _CORPUS.strip().splitlines() if line),
    *_LONG,
)
