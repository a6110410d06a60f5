"""The builtin `reviews` corpus: 640 short reviews written for torchyard, each with a
star rating (1, 2, 4 or 5) and a title.

It backs `builtin://reviews`: a labelled text task for fine-tuning a sentence encoder
(sentiment: ratings 4-5 positive, 1-2 negative; the rating itself for regression; title
and review as pairs for contrastive training). Written for this project and shipped
under its licence, as Python source so that it travels with the package; it never
changes at run time.
"""

from __future__ import annotations

REVIEWS: tuple[tuple[int, str, str], ...] = (
    (
        2,
        "The listing photos were very generous",
        "They showed a bright, spacious room. In reality it was small, dark and faced a brick "
        "wall.",
    ),
    (
        1,
        "Two hours I will never get back",
        "Incoherent plot, wooden acting, and an ending that made the whole audience groan. Walked "
        "out feeling cheated.",
    ),
    (
        4,
        "Tasty food, slow service",
        "Everything we ate was delicious, especially the grilled aubergine. We did wait forty "
        "minutes for our mains, though.",
    ),
    (
        5,
        "Best kettle I have owned",
        "Boils a full jug in under three minutes, the lid opens without spitting steam at your "
        "wrist, and it is quiet enough to use at six in the morning without waking the whole "
        "house. I have had it for two years and it still looks new. Could not ask for more.",
    ),
    (
        4,
        "Comfortable hotel, paper thin walls",
        "The bed was great and the staff helpful. We could hear every word from the room next "
        "door, though.",
    ),
    (
        2,
        "Beautiful app, constant crashes",
        "The design is lovely, but it crashes whenever I open the settings. Beauty isn't much use "
        "if I can't use it.",
    ),
    (
        5,
        "A series I'll rewatch for years",
        "Eight episodes, no filler, and a finale that pays off every thread. I watched it in two "
        "evenings and I'm already starting over.",
    ),
    (
        1,
        "Food poisoning after the seafood platter",
        "Both of us were ill all night after eating here. When I called, the manager just said "
        "nobody else had complained.",
    ),
    (
        2,
        "Plumber fixed it, sort of",
        "The leak stopped for a week, then came back. He returned, but charged another call-out "
        "fee.",
    ),
    (
        5,
        "Best ramen I've had without a passport",
        "Rich, deep broth, noodles with real bite, and an egg cooked perfectly soft. I'll be back "
        "every week until I've tried the whole menu.",
    ),
    (
        4,
        "Useful expense app, too many notifications",
        "It does everything I need for tracking spending. I had to switch off half the alerts in "
        "the first week.",
    ),
    (
        1,
        "Bed bugs in our room",
        "Woke up on the first morning covered in itchy red bites down both arms. The manager "
        "denied there was any problem, refused to move us to another room and suggested it was "
        "mosquitoes, despite the bugs we'd caught in a glass. Horrible.",
    ),
    (
        5,
        "Staff knew us by name by day two",
        "From the doorman to the cleaners, everyone greeted us personally. They even arranged a "
        "cake for my wife's birthday without being asked.",
    ),
    (
        2,
        "Looks great, works terribly",
        "The kettle is beautiful on the counter, but the lid sticks and it takes ages to boil. "
        "Style over substance, sadly.",
    ),
    (
        1,
        "Update deleted two years of notes",
        "I opened the app after the automatic update and every note from the last two years was "
        "gone: recipes, password hints, my late father's stories. Support says there is no backup "
        "and closed my ticket. Absolutely furious.",
    ),
    (
        4,
        "Good plumber, hard to get hold of",
        "Excellent, tidy work once he finally arrived, and the price matched the quote exactly. It "
        "did take four phone calls, two unanswered texts and two days of living with a dripping "
        "tap to get an appointment, so don't call him in an emergency.",
    ),
    (
        5,
        "The budgeting app that finally stuck",
        "I've tried five budgeting apps. This is the first I still use after a year, because it's "
        "quick and never nags.",
    ),
    (
        4,
        "Solid toaster with a noisy lever",
        "Toasts evenly on both sides and the wide slots take bagels. The lever clanks loudly "
        "enough to wake the cat, but that is my only complaint.",
    ),
    (
        1,
        "Plumber flooded our kitchen",
        "He loosened the wrong pipe and left. We came home to an inch of water on the floor, and "
        "he refuses to pay.",
    ),
    (
        2,
        "I wanted to love this period drama, but",
        "Gorgeous sets and costumes, and the first episode hooked me. Then it became a slow loop "
        "of the same arguments, and I stopped after episode five.",
    ),
    (
        5,
        "Plumber came out on a Sunday night",
        "Burst pipe at ten at night and he arrived within the hour. Fixed it, cleaned up and "
        "charged a fair price.",
    ),
    (
        2,
        "Lovely room, bland food",
        "Gorgeous interior and clever cocktails, but the food had almost no seasoning. We salted "
        "everything.",
    ),
    (
        4,
        "Fun, if a little too long",
        "The action scenes are excellent, the car chase through the market is a real highlight, "
        "and most of the humour lands. It could easily have lost twenty minutes from the middle, "
        "though, where it gets tangled up in a dull conspiracy subplot.",
    ),
    (
        1,
        "Battery died within a week",
        "Charged the power bank fully on Monday, and by Sunday it would not turn on at all. "
        "Returned it and bought a different one.",
    ),
    (
        4,
        "Not bad at all for a station cafe",
        "I expected stale sandwiches and got a decent toastie and proper coffee. Ideal when your "
        "train is delayed.",
    ),
    (
        5,
        "My daughter sleeps with this bear",
        "We bought the plush bear for her second birthday and she has refused to put it down "
        "since. The stitching has survived two washes and a trip through a muddy park.",
    ),
    (
        1,
        "The worst finale in television history",
        "Years of build-up thrown away in forty minutes. Characters acted like strangers. I'm "
        "furious I ever invested in this show.",
    ),
    (
        2,
        "Great location, poor cleaning",
        "Couldn't be more central, but there was dust under the bed and hair in the shower.",
    ),
    (
        2,
        "I wanted to love this journal app",
        "Nice idea and pretty themes, but entries take ages to save and twice a whole entry "
        "vanished.",
    ),
    (
        1,
        "Rudest waiter I've ever met",
        "He rolled his eyes at our questions, slammed the plates down and then added a service "
        "charge. Never again.",
    ),
    (
        4,
        "Nice stay, unreliable wifi",
        "Clean, friendly and central. The wifi kept dropping, which matters if you need to get any "
        "work done.",
    ),
    (
        5,
        "Funniest film I've seen in ages",
        "I laughed so hard at the wedding scene that I missed the next two minutes of dialogue. "
        "The whole cinema was in tears.",
    ),
    (
        4,
        "Powerful editor with a steep learning curve",
        "Brilliant once you know it, but the first few days were confusing. The built-in tutorials "
        "help.",
    ),
    (
        2,
        "Joined in January, regretted it by February",
        "Nice equipment at this gym, but you can't get near any of it. It's always too crowded.",
    ),
    (
        5,
        "Neighbourhood cafe we'd be lost without",
        "Friendly staff who remember your order, excellent flat whites and cinnamon buns still "
        "warm from the oven. The heart of our street.",
    ),
    (
        1,
        "Overbooked and left us stranded at midnight",
        "No room, no alternative, no apology. We slept in the car.",
    ),
    (
        2,
        "I wanted to love this novel",
        "The premise is brilliant, a lighthouse keeper who receives letters from the future, and "
        "the first chapter is genuinely gripping. Then it drifts into page after page of "
        "description of the sea, the weather and the furniture, and I gave up somewhere around the "
        "halfway mark.",
    ),
    (
        4,
        "Nice gym, packed at peak times",
        "Great equipment and clean changing rooms. Between six and eight in the evening you'll "
        "queue for everything.",
    ),
    (
        5,
        "Sea view room worth every penny",
        "We woke up to waves and watched the sunset from the balcony. The room was spotless and "
        "the bed was heavenly.",
    ),
    (
        1,
        "Charged a full year after I cancelled",
        "I cancelled my trial a week early and was still billed. No reply from support either.",
    ),
    (
        4,
        "Good sander, bring ear protection",
        "Takes old paint off a door in minutes and the dust bag catches most of the mess. It is "
        "louder than I expected, though.",
    ),
    (
        1,
        "Gym won't let me cancel",
        "I moved cities and they still charge me monthly. Cancelling needs a letter, delivered in "
        "person, at the branch.",
    ),
    (
        5,
        "Ten minutes a day and I speak Spanish",
        "The language app made practice a habit. I can now hold a basic conversation, and the "
        "lessons never feel like homework.",
    ),
    (
        2,
        "Beautiful to look at, empty inside",
        "Every shot is lovely and none of it means anything. I couldn't tell you what the film was "
        "about.",
    ),
    (
        1,
        "Pot handle snapped on first use",
        "I lifted a pot of pasta and the handle broke clean off, spilling boiling water over the "
        "hob. Genuinely dangerous. Avoid.",
    ),
    (
        4,
        "Not bad at all for a sequel",
        "I expected a cash grab. It's a worthy follow-up with a smarter villain, even if the "
        "ending feels familiar.",
    ),
    (
        2,
        "Small bowl of pasta, big price",
        "Fifteen for a few spoonfuls of pasta with some sad mushrooms. Not bad, just not worth "
        "that.",
    ),
    (
        5,
        "I actually look forward to the gym now",
        "Clean, never overcrowded, and the trainers genuinely care. The early morning classes are "
        "brilliant.",
    ),
    (
        2,
        "Hotel above a bar, music until three",
        "The website didn't mention it, and earplugs only helped a little. The room itself was "
        "fine.",
    ),
    (
        5,
        "Cordless drill that earns its price",
        "Drove forty decking screws on one charge and still had two bars left. The clutch settings "
        "are actually useful, and the case holds every bit neatly.",
    ),
    (
        4,
        "Juicy burger, limp fries",
        "The burger was well seasoned and cooked just right. The fries arrived soggy, but I'd "
        "still go back for the burger.",
    ),
    (
        1,
        "First film I've ever walked out of",
        "Forty minutes in, nothing had happened, loudly, and I'd had enough. Never left a cinema "
        "early before.",
    ),
    (
        5,
        "Documentary that changed how I shop",
        "A calm, careful film about where our old clothes end up. No lecturing, just evidence, and "
        "I haven't bought fast fashion since.",
    ),
    (
        4,
        "Not bad at all for a budget airline",
        "Left on time, the seats were tight but bearable, and the crew were cheerful. You get what "
        "you pay for, and that's fine.",
    ),
    (
        1,
        "Same soup, hair removed",
        "I found a hair in my soup. They took it away and brought back the same bowl with the hair "
        "fished out. Disgusting.",
    ),
    (
        2,
        "The redesign made everything slower",
        "The old version was snappy. Since the update every screen takes a few seconds to load.",
    ),
    (
        2,
        "Parcel left out in the rain",
        "Not in the safe place I'd asked for, just on the doorstep in a downpour. The box was "
        "soaked through.",
    ),
    (
        4,
        "Free workout app, not bad at all",
        "I expected endless ads, but there's just one small banner. The workouts themselves are "
        "well designed.",
    ),
    (
        5,
        "An anniversary dinner to remember",
        "The staff knew it was a special night and made a fuss without going over the top. Every "
        "course was beautiful, especially the lamb.",
    ),
    (
        1,
        "Airline cancelled and then vanished",
        "Two hours' notice, no rebooking and no refund after six weeks of emails. Disgraceful.",
    ),
    (
        5,
        "Mountain cabin where we truly switched off",
        "Wood stove, hot tub, and nothing but trees for miles. A week there did more for us than "
        "any spa.",
    ),
    (
        4,
        "High street bank, not bad at all",
        "Opening the account was quick and the branch staff were helpful. The app could be better.",
    ),
    (
        2,
        "T-shirt shrank after one wash",
        "It fitted nicely out of the bag, but after a cool wash it's now a size smaller and the "
        "hem has twisted.",
    ),
    (
        1,
        "Crashes on the splash screen every time",
        "Since the last update it won't open at all. Reinstalling didn't help. Useless.",
    ),
    (
        5,
        "Pro photo tools without a subscription",
        "Curves, masks and layers, all free, and it runs smoothly even on my old laptop. I can't "
        "believe this costs nothing.",
    ),
    (
        4,
        "Not bad at all for a cheap backpack",
        "I assumed it would fall apart within a month. It has carried a laptop to work daily for a "
        "whole term and the zips still run smoothly.",
    ),
    (
        1,
        "Marked delivered, never arrived",
        "The photo showed someone else's front door. The company says it's not their problem.",
    ),
    (
        2,
        "A comedy with about three jokes",
        "The trailer contained all the funny bits. The rest is people shouting at each other in a "
        "kitchen.",
    ),
    (
        1,
        "Blender leaked and smells of burning",
        "It leaked from the base on the very first smoothie and now gives off a smell of burning "
        "plastic. Complete waste of money.",
    ),
    (
        2,
        "I wanted to like this little cafe",
        "Sweet staff, a lovely idea and a cosy corner by the window, and I really did want this "
        "place to succeed on our street. But the coffee was bitter enough to make me wince and the "
        "croissant tasted at least a day old, so I doubt I'll be back soon.",
    ),
    (
        4,
        "Good drama, unfocused after the time jump",
        "The first hour is superb. After the jump forward it loses some focus, but the final scene "
        "brings it home.",
    ),
    (
        5,
        "Delivery driver carried our fridge up four floors",
        "And then helped us slot it into place. Above and beyond anything I expected.",
    ),
    (
        2,
        "Four hours at the gate with no updates",
        "Once we finally took off the crew were pleasant, but the first day of our holiday was "
        "gone.",
    ),
    (
        5,
        "Headphones I forget I'm wearing",
        "I wear these for whole workdays and my ears never ache. The noise cancelling shuts out "
        "the open office completely, and the battery lasts all week.",
    ),
    (
        4,
        "Lovely cafe, tiny tables",
        "Great cake and friendly staff. The tables are so small that my laptop and my coffee "
        "couldn't both fit.",
    ),
    (
        1,
        "Offensively lazy remake",
        "They took a beloved classic, removed everything clever, and added a pop song. An insult "
        "to the original.",
    ),
    (
        2,
        "An ad after every single move",
        "The game underneath is fun, but I can't play for ten seconds without a video. I've given "
        "up.",
    ),
    (
        4,
        "Stunning lake views, tired rooms",
        "The location is beautiful. The rooms could do with a refresh: worn carpets and old "
        "furniture.",
    ),
    (
        5,
        "Lighthouse cartoon that made grown men cry",
        "My husband claims he had something in his eye. The story of the old lighthouse keeper is "
        "gentle, beautiful and devastating.",
    ),
    (
        1,
        "Waited two hours, food never came",
        "We asked three separate times and were told each time that it was just coming out of the "
        "kitchen. After two hours we gave up and left hungry, and not one member of staff "
        "apologised or even seemed surprised. I have never walked out of a restaurant before.",
    ),
    (
        4,
        "Accurate forecasts, cluttered layout",
        "I have to scroll past a lot of widgets I don't need, but the predictions are reliable.",
    ),
    (
        2,
        "Every question takes a week of emails",
        "The bank account itself is fine, but getting an answer to anything is painfully slow.",
    ),
    (
        5,
        "Pizza crust worth the twenty minute wait",
        "Charred, chewy and light, with a simple tomato sauce that tastes of summer. I'd queue "
        "twice as long for it.",
    ),
    (
        1,
        "Stained sheets and a used towel",
        "Mould in the shower too. We left after ten minutes and are still waiting for our money "
        "back.",
    ),
    (
        4,
        "Sofa arrived late but unscratched",
        "A day after the promised date, admittedly, but the driver was polite and careful on our "
        "narrow stairs.",
    ),
    (
        5,
        "Flight attendant calmed my scared son",
        "During heavy turbulence she sat with him and showed him how the wings work. Kindest crew "
        "I've ever flown with.",
    ),
    (
        1,
        "Why does a torch app need my contacts?",
        "It asked for my location and contacts too. Spyware dressed up as a flashlight. "
        "Uninstalled immediately.",
    ),
    (
        2,
        "Speaker sounds thin and tinny",
        "Fine for a podcast in the kitchen, but any music with bass sounds hollow. Not what the "
        "description promised.",
    ),
    (
        4,
        "Earbuds better than I expected",
        "Sound is clear and the fit stays secure on runs. The case is a bit bulky for a pocket, "
        "but I can live with that.",
    ),
    (
        2,
        "Sequel nobody needed",
        "It repeats the first film beat for beat, only louder. Not awful, just pointless.",
    ),
    (
        1,
        "Bank froze my account without explanation",
        "I couldn't pay bills for two weeks and nobody would tell me why. Disgraceful treatment.",
    ),
    (
        5,
        "Notes app that replaced three others",
        "Fast search, instant sync across devices, and it works offline. I use it every single "
        "day.",
    ),
    (
        2,
        "Long wait, lukewarm food",
        "We waited nearly an hour and the mains arrived barely warm. The staff apologised, which "
        "was nice.",
    ),
    (
        4,
        "Solid series, weak final episode",
        "Seven excellent episodes and a finale that rushed everything. Still worth watching for "
        "the performances.",
    ),
    (
        5,
        "Bank refunded a fraud claim in a day",
        "Someone cloned my card and every penny was back within twenty four hours. Calm and kind "
        "on the phone.",
    ),
    (
        1,
        "Trousers split on the first wear",
        "Wore them to work once and the back seam split when I sat down. Embarrassing and cheaply "
        "made.",
    ),
    (
        5,
        "A novel I finished in one night",
        "I meant to read a chapter before bed and looked up at 3 a.m. with forty pages left. The "
        "ending recast everything before it, and I immediately started again.",
    ),
    (
        4,
        "Our lazy-night Italian",
        "Nothing fancy, but the pasta is fresh and the prices are fair. Our go-to when we can't be "
        "bothered to cook.",
    ),
    (
        2,
        "I wanted to love this grand old hotel",
        "Stunning building, a beautiful marble lobby and a doorman who made us feel like royalty "
        "on arrival. The room, though, smelled strongly of damp, the window didn't close properly, "
        "and the heating barely worked, so we spent three chilly nights wishing we'd stayed "
        "somewhere plainer.",
    ),
    (
        1,
        "Shaky camera made me seasick",
        "Blurry and badly lit from start to finish. I felt ill after twenty minutes and switched "
        "it off.",
    ),
    (
        5,
        "She barely speaks and it's unforgettable",
        "The lead carries the entire film with hardly a word of dialogue. Every glance says "
        "something. The awards were well deserved.",
    ),
    (
        1,
        "Ninety pounds for burnt steak and raw potatoes",
        "Overpriced and inedible. I have never been so angry at a restaurant.",
    ),
    (
        2,
        "Subscription price doubled overnight",
        "It's a decent app, but I'm not paying twice as much for exactly the same features.",
    ),
    (
        4,
        "Good B&B, breakfast ends too early",
        "Lovely hosts and a tasty breakfast, but it's only served until half eight, which is tough "
        "on holiday.",
    ),
    (
        2,
        "Asked for a trim, got a bob",
        "It'll grow back, and the stylist was friendly enough, but I won't be going back.",
    ),
    (
        4,
        "Good language app, repetitive sentences",
        "I'm learning a lot, but the same sentences about apples and cats come up far too often.",
    ),
    (
        1,
        "Worst holiday of our lives",
        "The resort looked nothing like the photos, the food made us ill and the staff didn't "
        "care. Avoid.",
    ),
    (
        5,
        "Vegan food that won over my dad",
        "He came grumbling about lentils and left asking for the mushroom pie recipe. Everything "
        "was full of flavour.",
    ),
    (
        4,
        "Liked the haircut, not the wait",
        "The cut itself was good and the stylist clearly knew what she was doing. I did wait forty "
        "minutes past my appointment time, with nobody explaining why, which meant rushing to pick "
        "up my kids from school afterwards.",
    ),
    (
        5,
        "Best hostel I've stayed in",
        "Clean dorms, lockers that actually fit a backpack, and a kitchen full of friendly "
        "travellers. Brilliant value.",
    ),
    (
        2,
        "Bread knife went dull within weeks",
        "It cut well at first, but after a month it struggled with crusts. For this price I "
        "expected it to hold an edge longer.",
    ),
    (
        1,
        "Locked out of my bank for a week",
        "I couldn't pay rent because the app locked me out and the helpline kept hanging up. "
        "Unacceptable.",
    ),
    (
        4,
        "Enjoyable thriller with a rushed ending",
        "Kept me turning pages for three hundred pages, then wrapped everything up in ten. Still a "
        "fun read for a long train journey.",
    ),
    (
        5,
        "A meditation app that actually calms me",
        "The voices are soothing and the sessions short enough for a lunch break. My sleep has "
        "noticeably improved.",
    ),
    (
        2,
        "The twist ruins the mystery",
        "Up to the final ten minutes it was a decent whodunnit. Then the twist undoes everything "
        "and makes no sense.",
    ),
    (
        1,
        "Electrician left live wires exposed",
        "Another electrician found bare wires behind the socket he'd fitted. Could have killed "
        "someone.",
    ),
    (
        2,
        "Pizza base soggy in the middle",
        "The toppings were generous, but the centre was wet and floppy. I ended up eating it with "
        "a knife and fork.",
    ),
    (
        1,
        "Toy broke before the party ended",
        "My son opened it at his birthday and the wheels had come off before the cake was served. "
        "Absolute junk.",
    ),
    (
        5,
        "Electrician who explained everything",
        "He showed me what was wrong with the wiring and gave a clear quote before starting. Tidy "
        "work, too.",
    ),
    (
        4,
        "Sweet film about a dog and grumpy neighbour",
        "Picked it at random on a rainy Sunday expecting nothing much. It turned out funny and "
        "warm, if a bit slight.",
    ),
    (
        2,
        "Breakfast not worth the extra charge",
        "Lukewarm eggs, dry pastries and weak coffee. We ate at a cafe down the road after the "
        "first morning.",
    ),
    (
        4,
        "Better than expected for a chain",
        "I usually avoid chains, but the salads were fresh and generous and the service was quick.",
    ),
    (
        1,
        "A comedy without a single laugh",
        "The jokes were mean, dated and painfully long. Nobody in our group smiled once. Dreadful.",
    ),
    (
        5,
        "Raincoat that actually keeps rain out",
        "Walked an hour through a proper downpour and my shirt underneath was bone dry. Light, "
        "packs into its own pocket, and the hood stays put in wind.",
    ),
    (
        1,
        "Food on the kitchen floor",
        "Through the hatch we saw food on the floor and a chef handling it with bare hands. We "
        "left before ordering.",
    ),
    (
        4,
        "Solid business hotel, no character",
        "Everything works, the desk is big and the coffee machine in the room is a nice touch. A "
        "little soulless.",
    ),
    (
        5,
        "Finally, a sci-fi show with real ideas",
        "Clever, patient storytelling about what memory means, with effects that serve the story. "
        "Season two is even better than the first.",
    ),
    (
        2,
        "Notes sync hours late, if at all",
        "What I write on my phone turns up on the laptop much later. Not ideal when I need it for "
        "work.",
    ),
    (
        2,
        "Two hours booked, done in one",
        "The cleaners did the kitchen properly, but the bathroom was barely touched.",
    ),
    (
        1,
        "Our tour guide abandoned us at a market",
        "He never came back. We found our own way home, two hours late and in the dark.",
    ),
    (
        5,
        "Brunch spot worth queuing for",
        "The hollandaise is silky, the sourdough is crunchy, and the coffee is strong. The queue "
        "moves fast and the staff keep it cheerful.",
    ),
    (
        4,
        "Nice redesign, dark mode forgets my setting",
        "The new look is cleaner and faster. Every few days it switches back to light mode on its "
        "own, though.",
    ),
    (
        5,
        "Eight hours of lakes and mountains by train",
        "A comfortable seat, a huge window and excellent food in the dining car. I didn't want the "
        "journey to end.",
    ),
    (
        1,
        "There is no cancel button anywhere",
        "I had to go through my bank to stop the subscription payments. Deliberately impossible to "
        "leave.",
    ),
    (
        4,
        "Cleaners did well, skipped the windows",
        "The kitchen and bathroom were spotless. The windows weren't touched, even though they "
        "were on the list.",
    ),
    (
        2,
        "Not quite the robot dog we hoped for",
        "It is cute, but it only responds to commands about half the time. My son lost interest "
        "after two days.",
    ),
    (
        4,
        "Decent frying pan, handle gets hot",
        "Nothing sticks and it cleans in seconds. The metal handle heats up on the hob, so keep a "
        "cloth nearby.",
    ),
    (
        5,
        "Rain alerts accurate to the minute",
        "The radar is clear and there are no ads cluttering the screen. Best weather app I've "
        "used.",
    ),
    (
        1,
        "Bleach left on until my scalp blistered",
        "The hairdresser forgot about me, and they still charged full price. Never again.",
    ),
    (
        2,
        "Three hours for a ninety minute story",
        "Too long and too slow. I checked my watch more than once, and so did the man next to me.",
    ),
    (
        1,
        "Saw blade wobbles dangerously",
        "The circular saw vibrates so badly that the cut wanders a centimetre off the line. I "
        "stopped using it before I lost a finger.",
    ),
    (
        4,
        "Enjoyable, but not the classic people claim",
        "Well made and entertaining, and I see why people love it. It just didn't move me the way "
        "it seems to move everyone else.",
    ),
    (
        5,
        "Our nervous rescue dog loves the groomer",
        "She's scared of nearly everyone, but wags her tail when we arrive here. Patient, gentle "
        "staff.",
    ),
    (
        2,
        "Not the brunch spot it used to be",
        "Under the new owners the portions have shrunk and prices have gone up. The eggs were "
        "overcooked too.",
    ),
    (
        4,
        "Pricey, but the duck justifies it",
        "The bill made me wince, I won't pretend otherwise. The duck was perfect and dessert was a "
        "small work of art.",
    ),
    (
        1,
        "Cancelled my subscription over this season",
        "Waited two years and got six episodes of filler ending on a cliffhanger. I'm done with "
        "the show.",
    ),
    (
        5,
        "cast iron pan, zero regrets",
        "seasoned it once, fried eggs slide right off now. heavy, sure, but it heats evenly and "
        "will outlive me. buying one for my brother.",
    ),
    (
        2,
        "Tour guide was hard to hear",
        "Interesting sites, but he mumbled and never used the microphone. We caught half of what "
        "he said.",
    ),
    (
        2,
        "Ten thousand steps sitting at my desk",
        "That's what the fitness app recorded on a day I barely moved. Hard to trust any of its "
        "numbers.",
    ),
    (
        1,
        "Coffee tasted like burnt rubber",
        "Bitter, scalding, and the milk had turned. Poured it away after one sip. Avoid.",
    ),
    (
        4,
        "Enjoyable tour, too many gift shops",
        "The guide was excellent and the sights wonderful. We just spent too long being steered "
        "into souvenir shops.",
    ),
    (
        5,
        "we watched the musical three times this weekend",
        "my kids have now memorised every song and honestly so have i. joyful from start to "
        "finish.",
    ),
    (
        2,
        "Repair worked, price didn't",
        "The mechanic fixed the car, but I later found out the job should have cost half as much.",
    ),
    (
        1,
        "Deposit kept over an old scratch",
        "It was there when we collected the car, and we had photos. They ignored them and kept the "
        "lot.",
    ),
    (
        4,
        "Reliable notes, pricey subscription",
        "It has never lost a note and syncs well. I just wish the yearly fee were a bit lower.",
    ),
    (
        5,
        "Six tables and the best dumplings anywhere",
        "One chef cooking alone behind the counter, and every plate came out perfect. Tiny place, "
        "enormous flavours.",
    ),
    (
        2,
        "Hammer head came loose",
        "Fine for hanging pictures, but after building a shed the head has started to wobble on "
        "the handle. I wouldn't trust it now.",
    ),
    (
        4,
        "Honest mechanic, slow turnaround",
        "Fair price and a clear explanation. The car took three days instead of one.",
    ),
    (
        5,
        "B&B with eggs from their own hens",
        "Homemade jams, fresh eggs and the best sausages I've had. The hosts made us feel like old "
        "friends.",
    ),
    (
        1,
        "A casino for children",
        "My son spent forty pounds in one afternoon. The game is designed to get kids spending. "
        "Shameful.",
    ),
    (
        4,
        "Comfortable shirt, runs slightly large",
        "The fabric breathes well on hot days and the collar keeps its shape after washing. I "
        "would order a size down next time.",
    ),
    (
        2,
        "Fine actors, lazy writing",
        "The cast is talented but stuck explaining the plot to each other in every scene. "
        "Disappointing.",
    ),
    (
        5,
        "Password manager that just works",
        "Fills in logins on every device and warns me about reused passwords. Setup took ten "
        "minutes.",
    ),
    (
        1,
        "Oil change left my car dented",
        "The garage denies everything, even with my photos from the morning.",
    ),
    (
        5,
        "Whole house moved in a single day",
        "The removal team packed, moved and unpacked everything. Nothing broken, nothing lost. "
        "Amazing.",
    ),
    (
        4,
        "Great cast, okay script",
        "The actors lift some clunky lines into something watchable. Worth it for the two leads "
        "alone.",
    ),
    (
        1,
        "Pages fell out of a brand new hardback",
        "The binding cracked as I opened it, and by chapter three loose pages were falling into my "
        "lap.",
    ),
    (
        2,
        "Sushi was only okay",
        "The rice was cold and hard, the fish was fine. For the price I expected a good deal "
        "better.",
    ),
    (
        1,
        "This horror film put us to sleep",
        "Both of us dozed off before the monster appeared. When we woke up it still wasn't scary.",
    ),
    (
        4,
        "Excellent espresso, unbearable playlist",
        "Great coffee and nice pastries. It's hard to talk over the music, so I usually take mine "
        "to go.",
    ),
    (
        5,
        "Wooden train set that survived twins",
        "Two toddlers have thrown, chewed and stood on this set for a year. Not a single piece has "
        "cracked, and the magnets still hold the carriages together.",
    ),
    (
        2,
        "Building work next to the pool every morning",
        "Drilling from eight o'clock isn't what we were promised. The staff apologised, but it "
        "spoiled the week.",
    ),
    (
        4,
        "Bright flat, five floors, no lift",
        "The apartment itself was lovely and well equipped. Hauling suitcases up all those stairs "
        "was a workout.",
    ),
    (
        5,
        "A heist movie with no wasted minutes",
        "Tight, stylish and genuinely surprising. The twist in the final act made me want to "
        "rewatch everything immediately.",
    ),
    (
        2,
        "Budget app that can't handle two currencies",
        "It's fine at home, but useless the moment I travel. Not the budgeting app I'd hoped for.",
    ),
    (
        1,
        "They ignored my nut allergy",
        "I told them clearly and the sauce was full of nuts anyway. I spent the evening in "
        "hospital.",
    ),
    (
        1,
        "Drilling from seven, dust everywhere",
        "Nobody warned us the hotel was a building site, and they refused any kind of refund.",
    ),
    (
        2,
        "I wanted to like this yoga studio",
        "The teachers are lovely, the room is calm and bright, and the evening flow class is "
        "exactly what I need after work. Unfortunately classes are cancelled at short notice "
        "nearly every week, usually by a text an hour before, and I've stopped planning my "
        "evenings around them.",
    ),
    (
        4,
        "Map app mostly accurate",
        "Gets me where I need to go and the traffic info is good. Once it sent me down a road that "
        "had been closed for months.",
    ),
    (
        5,
        "They handled my nut allergy perfectly",
        "I always dread eating out with a severe allergy. Here the waiter checked every single "
        "dish with the kitchen, came back to explain what they'd changed, and even had a separate "
        "dessert made for me so I wasn't left watching everyone else eat. I felt completely safe, "
        "and the food was excellent.",
    ),
    (
        1,
        "Everything useful moved behind a paywall",
        "The update removed every feature I relied on or locked it away. Worst update I've ever "
        "seen.",
    ),
    (
        5,
        "Our guide Marta brought history alive",
        "Funny, knowledgeable and patient with endless questions. The three hour walking tour flew "
        "by.",
    ),
    (
        2,
        "Phone case is more decoration than protection",
        "It looks nice, but the first drop onto a pavement cracked the corner of my screen. The "
        "lip around the glass is far too shallow.",
    ),
    (
        4,
        "Helpful agent after half an hour on hold",
        "Once I got through, she sorted everything. The waiting is the only problem.",
    ),
    (
        5,
        "Offline maps saved our mountain road trip",
        "We had no phone signal for hours in the mountains and the app didn't miss a single turn. "
        "When a bridge turned out to be closed, it rerouted us instantly along a gravel road that "
        "turned out to have the best views of the whole holiday.",
    ),
    (
        4,
        "Kids love the marble run, assembly less so",
        "It's sturdy and both children play with it for hours. The assembly diagram was baffling, "
        "though, and it took us an hour to work out.",
    ),
    (
        2,
        "Not as clever as it thinks",
        "The show keeps telling you how smart it is, with clues that lead nowhere. I lost patience "
        "by episode four.",
    ),
    (
        1,
        "Movers a day late, then broke a mirror",
        "We slept on the floor among the boxes, then watched them drop my grandmother's mirror.",
    ),
    (
        5,
        "A hairdresser who listens",
        "I asked for a trim and got exactly a trim. She even showed me how to style it myself.",
    ),
    (
        4,
        "Charming if predictable small-town romance",
        "You know exactly how it will end after five minutes. Getting there is still a warm, easy "
        "watch.",
    ),
    (
        1,
        "Laptop would not even boot",
        "Arrived, charged overnight, pressed the power button: nothing. Support told me to charge "
        "it overnight again. Returned.",
    ),
    (
        2,
        "Nice staff, forgettable meal",
        "Everyone was friendly and the room was pleasant. I just can't remember anything about the "
        "food.",
    ),
    (
        5,
        "The charger I should have bought years ago",
        "Charges my laptop, phone and earbuds at once from one plug, barely gets warm, and fits in "
        "a jacket pocket. It replaced a whole drawer of bricks.",
    ),
    (
        4,
        "Fresh sushi, short menu",
        "The fish was fresh and the rice well made. The menu is limited and they'd run out of "
        "salmon by eight.",
    ),
    (
        1,
        "Nobody seems to have read the script",
        "Characters appear and vanish, timelines contradict each other, and the plot makes no "
        "sense at all. A disaster.",
    ),
    (
        2,
        "Ferry cabin barely wider than the bunk",
        "The air conditioning rattled all night and it was stuffy. We got very little sleep on the "
        "crossing.",
    ),
    (
        4,
        "Train an hour late but comfortable",
        "The seats were roomy, the wifi worked and the staff handed out free drinks to apologise.",
    ),
    (
        1,
        "Two bottles of wine we never ordered",
        "They were on the bill, and the manager argued for ten minutes before taking them off.",
    ),
    (
        2,
        "Navigation eats half my battery",
        "Directions are fine, but an hour of driving uses half my phone's charge.",
    ),
    (
        5,
        "Two sisters, one house, no plot, pure magic",
        "Almost nothing happens, just two sisters clearing out their mother's house, and yet I "
        "thought about it for days. Beautifully acted.",
    ),
    (
        4,
        "Handy scanner, struggles with handwriting",
        "Receipts and printed documents scan cleanly. Text recognition on my scribbled notes is "
        "hit and miss.",
    ),
    (
        5,
        "This bakery ruined sliced bread for me",
        "Crusty loaves, custard tarts with crackling tops, and the nicest owner. There's no going "
        "back to the supermarket now.",
    ),
    (
        2,
        "Missed delivery card while I was home",
        "Three attempts, all while I was sitting by the door. The card said nobody answered.",
    ),
    (
        1,
        "Hostel lockers broken into",
        "Someone went through our bags, and the staff shrugged and said it wasn't their "
        "responsibility. Unsafe.",
    ),
    (
        4,
        "Quick movers, one broken lamp",
        "Fast and friendly team. One lamp arrived broken, which they paid for without any "
        "argument.",
    ),
    (
        5,
        "Central yet silent at night",
        "Five minutes from the old town, and still we didn't hear a thing after dark. I honestly "
        "couldn't fault a thing.",
    ),
    (
        2,
        "Underwhelming sequel to a great book",
        "The characters I loved in the first book feel flat here, and the mystery is obvious by "
        "chapter five. Disappointing.",
    ),
    (
        1,
        "The map sent us into a flooded ford",
        "At night, in the rain. Luckily we stopped in time. Genuinely dangerous routing.",
    ),
    (
        2,
        "Documentary barely scratches the surface",
        "An interesting topic, but it repeats the same three facts for an hour and a half. Read an "
        "article instead.",
    ),
    (
        4,
        "Quiet keyboard, cheap-feeling plastic",
        "The keyboard types quietly and has not missed a keystroke. The plastic feels a little "
        "cheap, but it works every single day.",
    ),
    (
        5,
        "Running three times a week for months now",
        "Gentle reminders, clear charts and workouts that adapt as I improve. This fitness app "
        "actually keeps me going.",
    ),
    (
        1,
        "Watch and cash missing after the cleaners left",
        "The company stopped answering our calls the next day.",
    ),
    (
        4,
        "Better than its silly trailer",
        "The trailer made it look like a dumb action movie. It's actually a thoughtful story about "
        "a family business, with a few car chases.",
    ),
    (
        2,
        "Too loud to enjoy dinner",
        "The music was so loud we had to shout our orders. Food was fine, but we left before "
        "dessert.",
    ),
    (
        5,
        "End of tenancy clean was spotless",
        "Ovens, windows, behind the fridge, everything sparkling. We got our full deposit back.",
    ),
    (
        1,
        "Nonstick coating peeled into my eggs",
        "After two weeks, black flakes of coating were coming off into the food. I'm not eating "
        "that. Refund requested.",
    ),
    (
        5,
        "Stand mixer worth the counter space",
        "Kneads bread dough for ten minutes without walking across the counter or straining. I "
        "bake twice a week now instead of twice a year.",
    ),
    (
        4,
        "We forgave the cramped seating",
        "We were practically sitting in the next table's laps. The food was delicious enough to "
        "make up for it.",
    ),
    (
        2,
        "Hostel kitchen was filthy",
        "The dorms were fine, but nobody seemed to clean the kitchen, so we ate out every meal.",
    ),
    (
        1,
        "Sold as family fun, upset my child",
        "Crude jokes and genuinely frightening scenes in something marketed for kids. I wish I'd "
        "checked first.",
    ),
    (
        2,
        "Every feature hidden behind three menus",
        "I spend more time hunting for buttons than using the app. The interface is genuinely "
        "confusing.",
    ),
    (
        1,
        "A cockroach strolled past our table",
        "Halfway through the meal it walked along the wall beside us. Enough said.",
    ),
    (
        4,
        "Hardly the nightmare hostel the reviews described",
        "I read horror stories, but our room was clean and quiet. The bathrooms could have been "
        "cleaner.",
    ),
    (
        5,
        "Best detective series on any channel",
        "Every case is clever, the lead pair have real chemistry, and the writers never cheat the "
        "viewer. I'm counting the days to the next season.",
    ),
    (
        1,
        "Stranded overnight at a rural station",
        "The last train was cancelled with no replacement bus, no staff and no information. "
        "Absolutely shocking.",
    ),
    (
        5,
        "Ten years of Friday takeaways, never a miss",
        "They have never once got our order wrong, and the lamb curry is still the best in town.",
    ),
    (
        4,
        "Lovely meditation app, mostly paywalled",
        "The free sessions are very good. Most of the best ones are behind the subscription, "
        "though.",
    ),
    (
        2,
        "One day job stretched over four",
        "The electrician's work was fine in the end, but he turned up late every single day.",
    ),
    (
        5,
        "Surprise suite for our honeymoon",
        "We mentioned it at check-in and they moved us to a suite with a bottle of wine waiting. "
        "Unforgettable.",
    ),
    (
        4,
        "Good electrician, left a bit of mess",
        "The new sockets work perfectly. Dust and bits of plaster were left on the carpet, though.",
    ),
    (
        2,
        "Slippers fell apart by spring",
        "Cosy for the first couple of months, then the sole started peeling away from the fabric. "
        "I expected at least a full winter.",
    ),
    (
        1,
        "Fitness app sold my running routes",
        "I started getting ads about my exact routes, and their privacy policy allows it. Deleted.",
    ),
    (
        4,
        "Hardly the disaster people warned about",
        "Reviews everywhere said this vacuum loses suction within weeks, so I bought it expecting "
        "to return it. Mine has been fine for four months on carpet, tiles and a very hairy dog's "
        "bed, and it is lighter than my old one. The bin is small, so empty it often.",
    ),
    (
        5,
        "Free editor that beats the paid ones",
        "Fast, endlessly customisable and it has never crashed on me. The plugin community is "
        "brilliant.",
    ),
    (
        1,
        "Fragile box thrown over a six foot gate",
        "I watched the courier do it on the doorbell camera. Everything inside was broken.",
    ),
    (
        2,
        "Too confusing for little ones",
        "The animation is pretty, but the story lost our kids quickly. By the middle they were "
        "wandering around the room.",
    ),
    (
        4,
        "Decent reef documentary, a bit one-sided",
        "Fascinating footage and clear explanations. I would have liked to hear from more than one "
        "scientist, though.",
    ),
    (
        1,
        "Lovely packaging, dead earcup",
        "The box was gorgeous, I'll give them that. The left earcup stopped working after ten "
        "days, and the replacement did the same within a month.",
    ),
    (
        5,
        "Mechanic told me not to pay",
        "He said the noise was harmless and sent me off without charging. That honesty earned him "
        "a customer for life.",
    ),
    (
        2,
        "Ordered medium, got well done twice",
        "The waiter kindly replaced my steak, but the second one was just as overcooked. The sides "
        "were good, at least.",
    ),
    (
        5,
        "Jeans that fit straight off the shelf",
        "Finally a pair that fits at the waist and the leg without any tailoring. After six months "
        "of weekly wear the colour has barely faded.",
    ),
    (
        4,
        "Nice pub lunch, bland peas",
        "Generous fish and chips and a good choice of drinks. The mushy peas lacked seasoning, but "
        "that's nitpicking.",
    ),
    (
        2,
        "Car fine, bill full of surprises",
        "The final invoice had charges for insurance we had already declined. Took weeks to get it "
        "refunded.",
    ),
    (
        1,
        "I've seen better school plays",
        "Every line is delivered like it's being read off a card for the first time. Absolutely "
        "dreadful acting.",
    ),
    (
        5,
        "Horror done right, no cheap jump scares",
        "Just a slow, creeping dread that got under my skin. I slept with the lights on for a week "
        "and loved every second.",
    ),
    (
        1,
        "Pizza two hours late and stone cold",
        "Wrong toppings too. When I rang the restaurant to complain, they hung up on me.",
    ),
    (
        2,
        "Teaches owl facts, not ordering coffee",
        "The language app teaches odd phrases and the grammar explanations are thin.",
    ),
    (
        4,
        "Lovely resort, painfully pricey drinks",
        "The pool and beach are gorgeous, the staff remembered our names, and the rooms were "
        "cleaned beautifully every day. My one complaint is that a cocktail by the pool costs "
        "about as much as a full meal in town, so we ended up buying drinks at the supermarket.",
    ),
    (
        5,
        "Seafood so fresh it tasted of the sea",
        "Oysters, grilled fish and a plate of chips on the harbour wall. Simple, perfect and "
        "fairly priced.",
    ),
    (
        4,
        "Photo backup works well enough",
        "Everything uploads in the background without fuss. It did drain my battery during the "
        "first big sync.",
    ),
    (
        2,
        "Transferred five times on the phone",
        "I ended up back where I started. The problem was eventually fixed by email.",
    ),
    (
        1,
        "Host cancelled the night before",
        "Our holiday flat vanished the evening before arrival, and we scrambled for a hotel at "
        "triple the price.",
    ),
    (
        5,
        "Dolphins off the bow of the ferry",
        "Comfortable lounge, good coffee, and a pod of dolphins halfway across. My kids still talk "
        "about it.",
    ),
    (
        2,
        "Toaster burns one side only",
        "One slot works well; the other leaves bread pale on one side and black on the other. I "
        "now toast one slice at a time.",
    ),
    (
        1,
        "Crashes every few minutes, support email bounces",
        "Don't waste your money on this app. There's nobody to even complain to.",
    ),
    (
        4,
        "Tough classes, tiny studio",
        "The instructors are great and the workouts are hard. The room gets very hot with twenty "
        "people in it.",
    ),
    (
        5,
        "Reading app that got my daughter into books",
        "She went from struggling with picture books to reading chapter books in a year. The "
        "stories are genuinely good.",
    ),
    (
        1,
        "Hung up on after forty minutes on hold",
        "Three times in one day. I've never been so angry at a company.",
    ),
    (
        2,
        "Horror that forgot to be scary",
        "Lots of creaking doors and loud bangs, but no real dread. I was more worried about the "
        "characters' terrible choices.",
    ),
    (
        4,
        "A stopgap grinder I ended up keeping",
        "Bought it to tide me over and never replaced it. Grind size is consistent for filter, "
        "less so for espresso, but for morning coffee it's more than enough.",
    ),
    (
        1,
        "Red jumper ruined a whole load",
        "Washed it on its own the first time, as instructed, and it still turned the next load "
        "pink. Do not buy.",
    ),
    (
        5,
        "From breathless to my first 10k",
        "Six months with this personal trainer and I finished my first race last week. Life "
        "changing.",
    ),
    (
        2,
        "Hot curry that lacked any kick",
        "Described as fiery, tasted like mild tomato soup. The naan was nice, though.",
    ),
    (
        4,
        "The kids loved it, I mostly did",
        "Bright, noisy and full of jokes that went over my head. My seven year old declared it the "
        "best film ever made.",
    ),
    (
        5,
        "I doubted a cookbook could be this reliable",
        "I have been burned by pretty cookbooks before, so I expected little. Every recipe I have "
        "tried turned out exactly as described, and the lentil stew is now a weekly staple.",
    ),
    (
        1,
        "Documentary full of factual errors",
        "Wrong dates, misquoted experts and a narrator who clearly doesn't understand the subject. "
        "Misleading and sloppy.",
    ),
    (
        2,
        "Room not ready until six",
        "Check-in was supposed to be three o'clock. We sat in the lobby for three hours with our "
        "bags.",
    ),
    (
        4,
        "I'd come back for the chocolate tart",
        "The mains were good rather than great. The tart, though, was one of the best desserts "
        "I've had.",
    ),
    (
        5,
        "The desert cinematography is breathtaking",
        "Every frame could hang in a gallery, and the score matches the images perfectly. See it "
        "on the biggest screen you can.",
    ),
    (
        4,
        "Good campsite, noisy neighbours",
        "The site is well kept and the views are great. The group next to us played music until "
        "two.",
    ),
    (
        2,
        "Forecast said sunny, it rained all three times",
        "The weather app looks nice, I'll give it that, but it's been wrong most of this week.",
    ),
    (
        1,
        "Worst brunch of my life",
        "Rubbery eggs, burnt toast and cold coffee, and it still cost a fortune.",
    ),
    (
        2,
        "Removal men scratched our dining table",
        "Quick and cheerful, but the table arrived with a deep gouge and they're slow to discuss "
        "it.",
    ),
    (
        1,
        "Told to buy my own blanket",
        "I asked reception for an extra blanket and that was the answer. Everything about this "
        "place felt hostile.",
    ),
    (
        4,
        "I paid to make the ads go away",
        "Clever puzzles and nice art. An advert after every level got tiring, so I bought the full "
        "version and I'm happy now.",
    ),
    (
        5,
        "Where our kids beg to eat",
        "Crayons arrive before you sit down, children's portions are real food, and nobody minds a "
        "bit of noise. Parents can actually relax.",
    ),
    (
        4,
        "Parcel fine, tracking clueless",
        "It arrived on time and intact. The tracking page said 'in transit' until well after it "
        "was delivered.",
    ),
    (
        1,
        "It shared my screen without asking",
        "During a client meeting, of all times. Mortifying. I won't use this video call app again.",
    ),
    (
        5,
        "Campsite with the cleanest showers",
        "Hot water, spotless facilities and pitches with space and a view. We've already booked "
        "for next year.",
    ),
    (
        2,
        "meh, this board game drags on",
        "the rules are clever, but one game takes three hours and most of that is waiting for your "
        "turn. we haven't played it again.",
    ),
    (
        1,
        "Builder took the deposit and vanished",
        "We paid a third of the price up front for a new kitchen, as he asked. He worked for two "
        "days, took out the old units, and disappeared, leaving us with no sink and a phone that "
        "has been switched off ever since.",
    ),
    (
        4,
        "Sturdy jacket, shallow pockets",
        "Warm, windproof and well stitched. My phone nearly slid out of the side pocket on a bike "
        "ride, so I use the inner one now.",
    ),
    (
        2,
        "The new season lost its charm",
        "I loved the first two seasons. This one replaced most of the main cast and the magic went "
        "with them.",
    ),
    (
        5,
        "Shopping list sorted by supermarket aisle",
        "Pick the week's meals in the recipe app and it builds the list for you. Saves me an hour "
        "every week.",
    ),
    (
        5,
        "Courier delivered a day early",
        "Neatly packed, with a text telling me exactly when to expect it. Couldn't have been "
        "better.",
    ),
    (
        4,
        "Scary until you see the monster",
        "The first act is genuinely frightening. Then the creature finally appears and it looks "
        "like a wet umbrella.",
    ),
    (
        1,
        "Eyes popped off a toddler toy",
        "It says suitable from eighteen months, yet the eyes came off within an hour. Tiny pieces "
        "my son could have swallowed. Unacceptable.",
    ),
    (
        2,
        "Dessert was the only highlight",
        "The mains were greasy and forgettable. The cheesecake was good, which is the only reason "
        "this isn't one star.",
    ),
    (
        1,
        "the ending made me throw the remote",
        "ten hours of build up and it was all a dream, seriously, a dream. never again.",
    ),
    (
        5,
        "Sturdiest ladder I have stood on",
        "No wobble at full height, it locks open with a satisfying click, and it folds flat enough "
        "to hang on the garage wall. I feel safe cleaning the gutters now.",
    ),
    (
        2,
        "Overpriced for a tired hotel",
        "Worn furniture and a stained carpet at city centre prices. Not dreadful, but poor value.",
    ),
    (
        4,
        "Pretty plates, still hungry afterwards",
        "Everything was tasty and beautifully presented, and the staff were lovely. I was still "
        "peckish when we left.",
    ),
    (
        1,
        "Treated like a nuisance for bringing a baby",
        "The staff sighed at the pram and seated us beside the toilets. We left after the "
        "starters.",
    ),
    (
        4,
        "Cruise mostly excellent, excursions overpriced",
        "Food and entertainment were great. The ports were crowded and the organised trips cost "
        "far too much.",
    ),
    (
        5,
        "A war film that respects its subject",
        "Harrowing without being gratuitous, and it gives the quiet moments as much weight as the "
        "battles. Essential viewing.",
    ),
    (
        2,
        "Every session ends with a sales pitch",
        "The meditation sessions are okay, but being pushed to upgrade afterwards isn't exactly "
        "calming.",
    ),
    (
        4,
        "Decent banking app, flaky fingerprint login",
        "Transfers are easy and it feels secure. The fingerprint login fails more often than it "
        "should.",
    ),
    (
        2,
        "Vet bills keep creeping up",
        "The care is fine, but every visit costs more than the last and nothing is explained in "
        "advance.",
    ),
    (
        1,
        "Filthy, overcrowded ferry",
        "No seats, disgusting toilets and a three hour delay. Never again.",
    ),
    (
        5,
        "Coffee good enough to cross town for",
        "The single origin pour over is fruity and clean, and the barista happily explains the "
        "beans. I make the trip every Saturday.",
    ),
    (
        4,
        "Friendly vet, a bit expensive",
        "They took great care of our dog. The bill was higher than I'd expected for a check-up.",
    ),
    (
        2,
        "Webcam image is grainy in the evening",
        "The picture is fine in daylight, but after dark it's grainy and washed out. Colleagues "
        "keep asking whether my camera is broken.",
    ),
    (
        5,
        "The massage alone fixed my back",
        "Saunas, a warm outdoor pool and the best massage I've had. I left more relaxed than I've "
        "been in years.",
    ),
    (
        1,
        "Weather app that hijacked my home screen",
        "Full screen ads every time I open it, and it changed my launcher. Malware in all but "
        "name.",
    ),
    (
        2,
        "Nice soundtrack, shame about the film",
        "I'll happily listen to the songs again. I won't be watching the film again.",
    ),
    (
        4,
        "Reliable tape measure, weak belt clip",
        "Locks firmly, the markings are easy to read, and the hook has not bent after a year in "
        "the van. The clip could be stronger.",
    ),
    (
        5,
        "Video calls even grandma can manage",
        "The picture stays clear even on hotel wifi, and my grandparents join without any help "
        "from us.",
    ),
    (
        1,
        "Personal trainer hurt my back",
        "He pushed me to lift far too much in our first session. I was off work for a week.",
    ),
    (
        1,
        "Smoke came out of the charger",
        "Plugged it in, heard a crackle, and smoke came out of the vents. I unplugged it and will "
        "never use it again.",
    ),
    (
        4,
        "Slow to start, but rewarding",
        "It takes its time and I nearly switched off in episode two. Glad I didn't; the back half "
        "is strong.",
    ),
    (
        5,
        "A dentist I'm no longer afraid of",
        "After years of avoiding check-ups, I found one who explains everything and is incredibly "
        "gentle.",
    ),
    (
        2,
        "Burger fell apart in my hands",
        "Decent flavour, but the bun disintegrated after two bites and I was left with a plate of "
        "mess.",
    ),
    (
        1,
        "Three hours of staring at walls",
        "I love slow films, but this wasn't atmospheric, it was empty. Boring beyond belief.",
    ),
    (
        4,
        "Hardly the tourist trap I feared",
        "Right on the main square, so I expected bad food at silly prices. It was honest local "
        "cooking at fair prices.",
    ),
    (
        2,
        "Stood for two hours despite a reservation",
        "Other people were in our booked seats on the train and the guard wouldn't help.",
    ),
    (
        5,
        "Puzzle that kept three generations busy",
        "A thousand pieces, none missing, and artwork detailed enough that every section was a "
        "fresh challenge. Grandad, the kids and I worked on it all holiday.",
    ),
    (
        4,
        "Lovely room after a slow check-in",
        "We waited forty minutes in the lobby for our keys. The room was worth it, and the bed was "
        "superb.",
    ),
    (
        2,
        "Video call audio keeps cutting out",
        "The picture is okay, but voices drop in and out constantly. Meetings are a struggle.",
    ),
    (
        1,
        "sushi smelled off",
        "the fish had a sour smell so we didn't touch it. they still charged full price. horrible "
        "place.",
    ),
    (
        5,
        "Baking show that feels like a hug",
        "Kind judges, contestants who help each other, and bakes I actually want to try. My "
        "favourite thing to watch on a Sunday.",
    ),
    (
        4,
        "Superb audio quality, clunky search",
        "Music sounds excellent. Finding one particular album takes more taps than it ought to.",
    ),
    (
        2,
        "Trainer spent sessions on his phone",
        "I learned a few useful exercises, but it wasn't worth what I paid.",
    ),
    (
        5,
        "Nine courses and not one misstep",
        "Each course of the tasting menu was more surprising than the last. Service was warm "
        "rather than stuffy, and the pacing was perfect.",
    ),
    (
        1,
        "Sick passengers, no help from the crew",
        "Half the ship fell ill and we were simply told to stay in our cabins. No refund offered.",
    ),
    (
        1,
        "Clean up feature wiped my holiday album",
        "No confirmation, no undo. Those photos are gone forever.",
    ),
    (
        5,
        "Family resort that kept all ages happy",
        "A kids' club for the little ones, a quiet pool for us, and food everyone enjoyed. Our "
        "best holiday yet.",
    ),
    (
        2,
        "Not as waterproof as claimed",
        "The boots are comfortable, but water seeps in at the seams after twenty minutes on wet "
        "grass. Fine for dry days only.",
    ),
    (
        4,
        "Low fees, poor phone support",
        "The bank's online service is good and it's cheap. Calling them is a different story.",
    ),
    (
        5,
        "Tax software that made it painless",
        "It walked me through every step in plain English and caught a deduction I'd been missing "
        "for years.",
    ),
    (
        4,
        "Tablet fine for reading and video",
        "Screen is sharp and the speakers are surprisingly loud. Games stutter a little, but that "
        "is not what I bought it for.",
    ),
    (
        1,
        "Vet called it a stomach bug",
        "Another vet found a serious infection two days later. Our dog could have died. Appalling.",
    ),
    (
        2,
        "Romcom without any chemistry",
        "The leads seem like polite strangers. When they finally kiss it feels like a contractual "
        "obligation.",
    ),
    (
        1,
        "The worst novel I've forced myself to finish",
        "Wooden dialogue, a plot that contradicts itself, and an ending that simply stops. I want "
        "those six hours back.",
    ),
    (
        2,
        "Bakery sells out by ten",
        "By half ten there was one lonely roll left. What I did try was good, but I can rarely get "
        "anything.",
    ),
    (
        5,
        "Overgrown mess to lovely garden in two weekends",
        "The gardener had great ideas for plants that suit our soil, and worked tirelessly.",
    ),
    (
        4,
        "Music drowns the dialogue, story is great",
        "I couldn't hear half the lines over the score and had to turn on subtitles. The story "
        "itself is gripping.",
    ),
    (
        5,
        "E-reader that spared my tired eyes",
        "The warm light setting lets me read in bed without a headache, and the battery goes for "
        "weeks. I have read more this year than in the last five.",
    ),
    (
        1,
        "Guessed the killer in the first scene",
        "And the motive in the second. An insultingly predictable thriller with no effort put into "
        "it.",
    ),
    (
        4,
        "Great pizza, book ahead on weekends",
        "Well worth it, just don't turn up hungry on a Saturday night without a reservation.",
    ),
    (
        2,
        "Mattress like a plank",
        "Clean, quiet room, but the bed was so hard my back ached for the rest of the week.",
    ),
    (
        2,
        "Photo editor closed without saving my edits",
        "An hour of retouching gone in an instant. Good features, fragile software.",
    ),
    (
        4,
        "Plain hotel, surprisingly good breakfast",
        "Nothing special, but clean and comfortable, and the breakfast was better than we "
        "expected.",
    ),
    (
        1,
        "Lost our birthday booking",
        "We booked weeks ahead. They had no record, no table and no interest in helping. Ruined "
        "the evening.",
    ),
    (
        5,
        "I wouldn't cut a single scene",
        "Five episodes of perfect pacing and writing. I kept waiting for it to stumble and it "
        "never did. A masterpiece of a mini-series.",
    ),
    (
        4,
        "The tracker works, the social feed doesn't",
        "Tracking and training plans are great. I never use the feed and wish I could hide it.",
    ),
    (
        5,
        "best tacos in this city, no contest",
        "soft tortillas made fresh, spicy salsa, cheap beer. sat at the counter and ordered a "
        "second round.",
    ),
    (
        2,
        "Builder left the finishing undone",
        "The extension is up, but he's moved on to another job and won't come back for the "
        "details.",
    ),
    (
        1,
        "The flat didn't exist",
        "We turned up at the address and found an office building. The host stopped replying. A "
        "scam.",
    ),
    (
        2,
        "Drill battery doesn't hold its charge",
        "It worked well for a few months. Now the battery drops from full to empty after a handful "
        "of screws, and a replacement costs half a new drill.",
    ),
    (
        4,
        "Tidy garden, hedge a bit too short",
        "The lawn is perfect and everything looks neat. He trimmed the hedge rather harder than "
        "I'd hoped.",
    ),
    (
        5,
        "Lost bag back the same evening",
        "I expected days of chasing. The airline desk found it within hours and sent it over by "
        "taxi. Really impressed.",
    ),
    (
        1,
        "Worst software I've used at work",
        "Slow, buggy and it loses data. Our team wastes hours a week fighting it.",
    ),
    (
        1,
        "Six weeks without internet, still billed",
        "Four missed engineer appointments and they're still sending invoices.",
    ),
    (
        2,
        "Forgot it by the next morning",
        "Not terrible, not good, just instantly forgettable. I had to check the next day whether "
        "I'd actually watched it.",
    ),
    (
        4,
        "Charming picture book, a bit short",
        "My four year old asks for it every night and the illustrations are lovely. I only wish "
        "there were a few more pages.",
    ),
    (
        5,
        "An update that didn't break anything",
        "Faster, lighter on the battery, and they kept every feature I loved. Rare these days, so "
        "thank you.",
    ),
    (
        4,
        "Worth it for the last twenty minutes",
        "The middle section sags badly and I nearly gave up twice, mostly because of a pointless "
        "subplot about a brother-in-law. But stick with it: the last twenty minutes are some of "
        "the best filmmaking I've seen this year, and they make sense of everything that came "
        "before.",
    ),
    (
        2,
        "Cold coffee, warm welcome",
        "The barista was lovely; the flat white was lukewarm and watery. I wish it were the other "
        "way round.",
    ),
    (
        5,
        "Billing error fixed in five minutes",
        "The agent understood the problem immediately and credited my account before I'd finished "
        "explaining.",
    ),
    (
        1,
        "Wrench rounded off every bolt",
        "The jaws slip and strip every nut you put them on. I ruined three bolts on my bike before "
        "giving up.",
    ),
    (
        2,
        "Campsite hot water gone by seven",
        "Pretty location and friendly owners, but the showers were cold every morning.",
    ),
    (
        1,
        "Worst sequel I've ever sat through",
        "It contradicts the first film, kills off the best character offscreen, and ends "
        "mid-sentence. Shameful.",
    ),
    (
        4,
        "Fluffy pancakes, weak coffee",
        "The pancakes were light and the eggs perfect. The coffee tasted watered down, so next "
        "time I'll order tea.",
    ),
    (
        5,
        "Blender crushes ice like nothing",
        "Frozen fruit, ice, even nut butter: it handles all of it in seconds. Cleaning is just "
        "warm water and a drop of soap with the blade still in.",
    ),
    (
        5,
        "Romantic comedy that earns its ending",
        "Smart, warm, and the leads actually seem to like each other. The airport scene is a "
        "cliche they somehow make fresh.",
    ),
    (
        1,
        "Pink chicken, served twice",
        "The chicken was raw in the middle. They took it back and returned it, still pink. "
        "Dangerous.",
    ),
    (
        2,
        "Cute kids' game, too many gem purchases",
        "It constantly asks my son to buy gems. Not what I want in front of a six year old.",
    ),
    (
        4,
        "Good hotel, terrible pillows",
        "Everything was lovely except the pillows, which felt like sacks of flour. Bring your own.",
    ),
    (
        5,
        "Sunday roast like my gran used to make",
        "Crisp potatoes, proper gravy and beef still pink in the middle. Pudding was a warm "
        "crumble with custard. Bliss.",
    ),
    (
        4,
        "Hardly the battery hog people complain about",
        "After all the warnings I barely notice its effect on my battery. The home screen widgets "
        "are handy too.",
    ),
    (
        2,
        "Internet cuts out every evening",
        "Speed is fine when it works, but it drops several times a night and the engineers can't "
        "find why.",
    ),
    (
        1,
        "Airline lost our luggage and blamed us",
        "They said we must have tagged the cases wrong. Three weeks on, still nothing.",
    ),
    (
        4,
        "Hardly the horror story I'd heard about",
        "Everyone warned me this internet provider was awful. Installation was on time and it's "
        "been reliable since.",
    ),
    (
        1,
        "Paid a year, lessons stopped in a month",
        "The language app won't load anything now and the company won't respond. A scam.",
    ),
    (
        5,
        "Boutique hotel with a claw foot bath",
        "Every room is decorated differently; ours had an old writing desk and a gorgeous bath. "
        "Charming and comfortable.",
    ),
    (
        2,
        "Mixing bowls feel cheap",
        "The lids don't seal and one bowl cracked in the dishwasher. They do stack neatly, which "
        "is about all I can say.",
    ),
    (
        4,
        "Mostly happy with this rice cooker",
        "Perfect white rice every time, with no checking or stirring; brown rice comes out a touch "
        "sticky, so I add a splash more water. It keeps warm for hours without burning the bottom, "
        "which is handy when my partner gets home late.",
    ),
    (
        5,
        "Knows my music taste better than me",
        "Every weekly playlist introduces me to something new I end up loving. I haven't skipped a "
        "track in weeks.",
    ),
    (
        2,
        "Fight scenes too shaky to follow",
        "The camera moves so much in every fight that I had no idea who was hitting whom. Mostly a "
        "headache.",
    ),
    (
        1,
        "Quoted forty, charged two hundred",
        "The locksmith named one price on the phone and another once the door was open. I felt "
        "like a hostage.",
    ),
    (
        4,
        "Likeable comedy with a few misses",
        "About two thirds of the jokes land, which is a decent rate for a comedy these days. The "
        "cast are clearly having fun.",
    ),
    (
        5,
        "Locked out with the baby inside",
        "The locksmith was there in twenty minutes, calm and quick. Eternally grateful.",
    ),
    (
        2,
        "Truffle fries without any truffle",
        "Lovely descriptions on the menu, plain food on the plate. The menu promises more than the "
        "kitchen delivers.",
    ),
    (
        1,
        "Coffee machine leaves a puddle every time",
        "Every cup leaves a pool of water under the machine that drips off the counter. Two "
        "replacements, same problem. Done with it.",
    ),
    (
        4,
        "A dependable lunch spot",
        "Quick soups and sandwiches, always fresh, and the staff are lovely. Nothing exciting, but "
        "nothing wrong either.",
    ),
    (
        2,
        "Same buffet every single day",
        "The ship was lovely, but by day four of identical dishes we were thoroughly bored of the "
        "food.",
    ),
    (
        5,
        "Not one thin spot after winter hikes",
        "These wool socks kept my feet warm in the snow, never itched, and still look new after "
        "months on the trail. I went back and bought four more pairs.",
    ),
    (
        1,
        "Mumbled dialogue, deafening explosions",
        "We spent the whole evening adjusting the volume, then gave up and turned it off.",
    ),
    (
        5,
        "Nobody looked at a phone once",
        "Funny for the kids, clever jokes for the adults, and the whole family was glued to it. We "
        "clapped at the end of movie night.",
    ),
    (
        4,
        "Airline lost my bag, then found it fast",
        "Not great that it went missing, but I had it back within a day and they paid for my "
        "toiletries.",
    ),
    (
        1,
        "Curry that tasted of hot water",
        "No flavour at all, and the rice was crunchy. I didn't think food could be this bad.",
    ),
    (
        2,
        "Support replies are copy and paste",
        "I've explained my problem three times and got the same template answer each time.",
    ),
    (
        2,
        "A whole bag missing from my grocery order",
        "What did arrive was fresh, but the refund for the rest took a week.",
    ),
    (
        4,
        "Great recipes, search could be smarter",
        "Clear instructions and tasty results. Searching 'quick vegetarian' still brings up a lot "
        "of chicken.",
    ),
    (
        5,
        "Tea room with the loveliest scones",
        "Scones still warm, thick cream, homemade jam and a pot of tea that kept being refilled. A "
        "perfect afternoon.",
    ),
    (
        1,
        "A beeping alarm all night long",
        "A faulty smoke alarm chirped every minute from midnight, and reception said nobody could "
        "fix it until morning.",
    ),
    (
        1,
        "A sync error emptied my password vault",
        "Support told me to reset every account by hand. Never again.",
    ),
    (
        4,
        "Pleased with the tailor, eventually",
        "Good alterations at a fair price. They took a week longer than promised.",
    ),
    (
        5,
        "Inn-to-inn walking holiday, perfectly organised",
        "Our luggage was moved ahead each day, the maps were clear and every stop was lovely. We "
        "only had to walk.",
    ),
    (
        2,
        "Puzzle pieces fit where they shouldn't",
        "Many pieces slot into the wrong places, so you can't tell when you've got it right. The "
        "printing is blurry too.",
    ),
    (
        2,
        "Drags after a promising first episode",
        "A strong opening about a missing hiker, then five episodes of side plots going nowhere.",
    ),
    (
        4,
        "Walking shoes worth the blister",
        "Stiff for the first week and I got one small blister. Now they are the comfiest shoes I "
        "own and my feet do not ache after long walks.",
    ),
    (
        1,
        "Gardener sprayed weedkiller on our flower beds",
        "Instead of the path. Everything died within a week, and he just laughed it off.",
    ),
    (
        5,
        "A banking app that's actually pleasant",
        "Instant notifications, easy transfers and a clear breakdown of my spending. Everything a "
        "bank app should be.",
    ),
    (
        1,
        "Shoes cut my heel to shreds",
        "A hard plastic heel that dug into my foot on the first walk. I was bleeding by the time I "
        "got home.",
    ),
    (
        2,
        "Cramped and stuffy dining room",
        "The food was nice, but the room was so hot and airless that we couldn't enjoy it. A fan "
        "would go a long way.",
    ),
    (
        5,
        "Both kids swam their first length this month",
        "Patient instructors and small groups at this swim school. They can't wait for Saturdays.",
    ),
    (
        4,
        "Stylish thriller, thin characters",
        "Looks fantastic and the pacing is tight. I just didn't care much whether the hero "
        "survived.",
    ),
    (
        5,
        "Honestly can't fault this monitor",
        "Colours were accurate out of the box, there isn't a single dead pixel, and the stand "
        "adjusts in every direction. My neck thanks me.",
    ),
    (
        1,
        "Product placement with a famous face",
        "Nothing here but product placement and a famous face. No story, no heart, no reason to "
        "exist.",
    ),
    (
        2,
        "No washing machine, despite the listing",
        "And the 'balcony' was more of a ledge. The apartment was not as advertised.",
    ),
    (
        4,
        "Mostly excellent tapas",
        "Most dishes were great, especially the garlic prawns. The croquettes were a bit greasy.",
    ),
    (
        5,
        "The director's boldest work yet",
        "Strange and completely confident. I walked out of the cinema feeling like I'd seen "
        "something genuinely new.",
    ),
    (
        4,
        "Calm crossing, cramped seats",
        "The ferry staff were friendly and the sea was smooth. The seats were packed close and the "
        "cafe ran out of sandwiches.",
    ),
    (
        2,
        "Logged out every thirty seconds",
        "Security matters, but being kicked out of the banking app while paying a bill is too "
        "much.",
    ),
    (
        1,
        "Waiters laughed at us for ordering tap water",
        "We overheard them mocking our table. Humiliating, and the food was poor too.",
    ),
    (
        1,
        "Balcony railing wobbled when I leaned on it",
        "I reported it and was told it's been like that for years. Genuinely dangerous.",
    ),
    (
        5,
        "Country pub worth the long drive",
        "The kitchen uses vegetables from its own garden, and it shows. Lovely fire, friendly dog, "
        "outstanding pie.",
    ),
    (
        4,
        "Kids' counting app crashes now and then",
        "My daughter loves the games. It crashes every few days, but reopens where she left off.",
    ),
    (
        2,
        "Gardener did the bare minimum",
        "He mowed the lawn and left. Weeds, edges and hedge all untouched despite what we'd "
        "agreed.",
    ),
    (
        2,
        "Nice watch, shame about the app",
        "The smartwatch itself is fine, but the phone app loses sync every day and the step counts "
        "rarely match. More frustrating than useful.",
    ),
    (
        1,
        "Still billing me for a closed account",
        "I closed my music account in March and they've taken money every month since.",
    ),
    (
        4,
        "Clean pool, grubby changing rooms",
        "Lanes are well organised and the water is lovely. The changing rooms need cleaning more "
        "often.",
    ),
    (
        5,
        "Airport hotel that felt like a real hotel",
        "Quiet rooms despite the runway, a good restaurant and a free shuttle every fifteen "
        "minutes. Perfect before an early flight.",
    ),
    (
        2,
        "Far from the director's best",
        "There are flashes of the old brilliance, but most of it feels like an imitation of her "
        "earlier films.",
    ),
    (
        5,
        "Drawing app my seven year old adores",
        "Simple enough for him, yet the brushes feel realistic. He's filled a hundred pages "
        "already.",
    ),
    (
        1,
        "Tailor ruined my wedding dress",
        "The hem was cut crooked a week before the wedding. I had to pay someone else to rescue "
        "it.",
    ),
    (
        4,
        "Useful little screwdriver set",
        "Covers every tiny screw in our house, from glasses to game controllers. The case is "
        "flimsy, but the bits themselves are hard steel.",
    ),
    (
        1,
        "Doll's hair came out in clumps",
        "My niece brushed it once and it came out in handfuls. She was in tears. Shameful quality "
        "for a toy.",
    ),
    (
        2,
        "Ramen broth far too salty",
        "The noodles were good and the egg perfect, but I was gulping water all evening "
        "afterwards.",
    ),
    (
        5,
        "Old suit now looks made to measure",
        "Took in the jacket and trousers perfectly, and had them ready in two days.",
    ),
    (
        4,
        "Pottery contest, pleasant and gentle",
        "Nothing groundbreaking, but this competition show is relaxing, kind, and perfect for "
        "winding down after work.",
    ),
    (
        2,
        "Old coach, no air conditioning",
        "The driver braked hard every few minutes, and we arrived hot, tired and queasy.",
    ),
    (
        4,
        "Patient staff, limited veggie menu",
        "The kids' menu is decent and the staff didn't mind our toddler. The adult menu could use "
        "more vegetarian options.",
    ),
    (
        5,
        "Building blocks my son plays with daily",
        "He is eight and builds something new every afternoon. The pieces snap together firmly and "
        "the instructions are clear enough for him to follow alone.",
    ),
    (
        1,
        "Painfully unfunny sitcom",
        "Every joke is a character falling over or shouting. I didn't smile once in three "
        "episodes.",
    ),
    (
        4,
        "Charming guesthouse, tricky to find",
        "The sat nav sent us in circles for half an hour. Once we got there, it was peaceful and "
        "lovely.",
    ),
    (
        5,
        "Deep sea episode left me speechless",
        "The nature series showed creatures I never knew existed. The narration is calm and "
        "informative, never over the top.",
    ),
    (
        2,
        "Downloaded playlists vanished before my flight",
        "Half of them were gone by the time I boarded. The music app forgets downloads far too "
        "often.",
    ),
    (
        1,
        "Mouldy rolls in the bread basket",
        "Green spots on the bread. They shrugged and said it happens. It should never happen.",
    ),
    (
        1,
        "Campsite flooded, and the owners knew it would",
        "They still put us in the low field. Our tent and everything in it were soaked.",
    ),
    (
        2,
        "Coat came back clean, minus a button",
        "The dry cleaner insisted it must have been missing already. It wasn't.",
    ),
    (
        4,
        "Good calendar, confusing sharing settings",
        "Once set up, it's great for the family. Working out who could see which events took a "
        "whole evening.",
    ),
    (
        5,
        "Smooth service for a rowdy party of twelve",
        "We were a large, loud group and every dish still arrived hot and together. I've no idea "
        "how they managed it.",
    ),
    (
        1,
        "Showed a train that didn't exist",
        "I waited forty minutes at the station because of this transit app and missed my flight.",
    ),
    (
        5,
        "Cabin bigger than expected, cruise a dream",
        "Great food, lovely ports, and staff who made every day feel special. I'd book it again "
        "tomorrow.",
    ),
    (
        4,
        "Gentle dentist, curt receptionist",
        "The treatment was thorough and painless. The receptionist was short with me and once "
        "double booked me.",
    ),
    (
        2,
        "Scarf is itchier than wool should be",
        "It looks cosy, but after an hour my neck was red and scratchy. I wear it over a collar "
        "now, which rather defeats the point.",
    ),
    (
        5,
        "Four months of flossing thanks to this tracker",
        "The habit app has a calm, clean design and satisfying streaks. I didn't think an app "
        "could change a habit.",
    ),
    (
        2,
        "The narrator's voice is lost on screen",
        "They kept the plot of the novel and lost its heart. The voice that made the book special "
        "is gone completely.",
    ),
    (
        1,
        "Six months of fees on a closed account",
        "I closed it in writing and the bank kept charging me anyway. No apology.",
    ),
    (
        4,
        "The remote car is quick, the battery isn't",
        "My nephew loved racing it around the hall. Twenty minutes of play per charge is short, so "
        "we bought a spare battery.",
    ),
    (
        1,
        "Two keys dead within a week",
        "The E and R keys on this keyboard stopped responding after a few days. Try typing an "
        "email without them. Returned immediately.",
    ),
    (
        2,
        "Takeaway arrived missing half the order",
        "What did arrive was right and tasty. The rest never came, and getting a refund was a "
        "hassle.",
    ),
    (
        4,
        "Mostly faithful to the novel",
        "A few beloved scenes are missing, which stung a little. The film still captures the "
        "spirit of the book.",
    ),
    (
        5,
        "Vet who treated our cat like family",
        "Gentle, thorough, and they called the next day to check on her. We wouldn't go anywhere "
        "else.",
    ),
    (
        5,
        "A toolbox that stays organised",
        "Removable trays, strong latches, and a lid that holds small screws in separate "
        "compartments. Half an hour of setup and now I can find any bit in seconds.",
    ),
    (
        4,
        "Curry was hot, in a good way",
        "Properly spicy, which I love, though my partner needed three glasses of water. Ask for "
        "mild if in doubt.",
    ),
    (
        1,
        "They ruined a book I love",
        "They changed the ending, merged three characters into one and cut the best chapter. "
        "Heartbreaking.",
    ),
    (
        2,
        "Friendly staff can't fix a broken lift",
        "Everyone was kind, but the lift was out of order all week and our room was on the sixth "
        "floor.",
    ),
    (
        1,
        "Wrong table, wrong order, wrong bill",
        "Nothing about this evening went right, and nobody seemed to care.",
    ),
    (
        5,
        "Started at nine, finished at sunrise",
        "I meant to watch one episode and ended up seeing the season finale as the sun came up. "
        "Absolutely gripping.",
    ),
    (
        4,
        "Good stay, loud air conditioning",
        "Comfortable room, decent breakfast, helpful staff. The air conditioning was a bit loud at "
        "night.",
    ),
    (
        2,
        "Editor takes minutes to open a project",
        "The features are great, but I spend half my day waiting for it to load.",
    ),
    (
        1,
        "Cold room, broken shower, extra fees",
        "Plus a noisy road outside the window. Dreadful in every way, and we will never stay here "
        "again.",
    ),
    (
        2,
        "Trousers now show too much sock",
        "I asked the tailor for a small adjustment. They're wearable, but shorter than I wanted.",
    ),
    (
        5,
        "Ice cream parlour of my dreams",
        "Twenty flavours, all made on site, and they let you taste as many as you like. The salted "
        "caramel is unbeatable.",
    ),
    (
        4,
        "Rough edges, but they listen",
        "There are still a few bugs here and there, and the sync occasionally needs a restart. But "
        "this little startup fixes problems quickly, actually replies to feedback within a day, "
        "and shipped the feature I asked for last month. I'm happy to stick with them.",
    ),
    (
        2,
        "Could have been a good cookbook",
        "Lovely photos, but several recipes have the wrong quantities, and one cake came out as "
        "soup. I've stopped trusting it.",
    ),
    (
        4,
        "Lovely kitchen, patchy communication",
        "The builder's work is excellent. I just wish he'd tell me when he's not coming instead of "
        "leaving me waiting.",
    ),
    (
        5,
        "The host thought of everything",
        "Spare chargers, a stocked kitchen and a handwritten guide to the best local cafes. Home "
        "from home.",
    ),
    (
        1,
        "Dating ads in a toddler colouring app",
        "How is that allowed? Uninstalled within the hour and reported it.",
    ),
    (
        2,
        "Not the show of the year for me",
        "Everyone at work told me this was the show of the year and that I simply had to watch it. "
        "It's fine, I suppose, with a couple of good performances and a nice soundtrack, but I "
        "honestly don't see what the fuss is about.",
    ),
    (
        1,
        "Mouldy strawberries, refund refused",
        "The grocery delivery was full of rotten fruit, and they wanted evidence. I sent photos. "
        "Still nothing.",
    ),
    (
        5,
        "A real person restored my lost list",
        "A sync bug wiped everything and support brought it back from a backup the same afternoon. "
        "Outstanding.",
    ),
    (
        4,
        "Couldn't find much wrong with this lamp",
        "The desk lamp is bright, has three colour temperatures and a flexible neck. The base "
        "could be heavier, but it hasn't tipped over yet.",
    ),
    (
        2,
        "Foam on a spoon is not a course",
        "Some courses on the tasting menu were clever; others felt like filler. Not bad, but not "
        "special for the price.",
    ),
    (
        4,
        "Impressive debut with rough edges",
        "For a first film it's confident and original. Some scenes drag and the editing is choppy, "
        "but I'll watch whatever she makes next.",
    ),
    (
        5,
        "Builder finished on time and on budget",
        "I didn't think that was possible. The extension was done to the day and to the penny, and "
        "it's beautiful.",
    ),
    (
        1,
        "knife arrived rusty",
        "opened the box and there were rust spots all along the blade. stainless steel my foot. "
        "sending it back.",
    ),
    (
        1,
        "So bad it isn't even fun",
        "Some bad films are enjoyable to laugh at. This one is just tedious and cheap.",
    ),
    (
        4,
        "Cosy cafe, bring cash",
        "Love the atmosphere and the chai latte. Twice now their card reader has been down, so I "
        "keep a few coins handy.",
    ),
    (
        5,
        "Smartwatch with a week of battery",
        "I charge it on Sunday evenings and that is it. Sleep tracking seems accurate, "
        "notifications are clear, and it survived a swim in the sea.",
    ),
    (
        2,
        "Airport shuttle never showed up",
        "We waited an hour, then paid for a taxi. The hotel refunded half after a long argument.",
    ),
    (
        1,
        "Hidden cover charge on top of tiny portions",
        "Huge prices for a few mouthfuls, and a surprise fee per person on the bill. Felt like a "
        "scam.",
    ),
    (
        4,
        "Ski chalet, long walk to the lifts",
        "The chalet was warm and the host cooked wonderful dinners. Carrying skis twenty minutes "
        "uphill every morning was less fun.",
    ),
    (
        5,
        "I don't care about rowing and still cheered",
        "A sports drama with real heart. I shouted at the screen during the final race like I'd "
        "known the crew for years.",
    ),
    (
        2,
        "meh, another bloated to-do list",
        "started simple, now full of chat, ai features and themes nobody asked for. i just want to "
        "tick things off.",
    ),
    (
        5,
        "Watching the noodles pulled is half the fun",
        "The noodle bar is fast, cheap and always buzzing, and the hand pulled noodles are made "
        "right in the window.",
    ),
    (
        4,
        "Comfortable reader, slow library sync",
        "Pleasant to read in, but new books take ages to appear on my other devices.",
    ),
    (
        1,
        "Five hours on a motorway hard shoulder",
        "Our coach broke down and the company didn't send a replacement or even water.",
    ),
    (
        2,
        "Driving lessons started late, ended on time",
        "The instructor knows his stuff, but I kept losing fifteen minutes of each lesson.",
    ),
    (
        5,
        "Snorkelling with turtles on the island trip",
        "Clear water, a cheerful crew and lunch on deck. The highlight of the whole trip.",
    ),
    (
        1,
        "Tax software filed the wrong figures",
        "It miscalculated my return and I now owe a penalty. Support blamed me.",
    ),
    (
        4,
        "Phone screen fixed in an hour, not cheap",
        "Cheaper places exist, but I trust this repair shop and the work is good.",
    ),
    (
        2,
        "Mouse started double clicking on its own",
        "Comfortable shape and a good weight. After three months it began registering double "
        "clicks, which makes dragging files a gamble.",
    ),
    (
        2,
        "Four storylines left hanging",
        "I don't need everything explained, but leaving that much unresolved isn't mysterious, "
        "it's unfinished.",
    ),
    (
        4,
        "A memoir worth the slow start",
        "The first fifty pages are dry family history. After that, the story of running a village "
        "bakery becomes funny and moving.",
    ),
    (
        5,
        "Transit app that knows which carriage to board",
        "Live times are accurate and the journey planner is smart. I no longer stand at bus stops "
        "guessing.",
    ),
    (
        1,
        "Dentist did work I never agreed to",
        "I went in for a check-up and left with a filling and a huge bill.",
    ),
    (
        2,
        "Dry carrot cake, decent scones",
        "The scones were fine, but the carrot cake was dry and clearly a few days old. Expected "
        "more from a tea room.",
    ),
    (
        4,
        "Hardly the flop the critics described",
        "I went in with low expectations because of the reviews. It's a perfectly fun space "
        "adventure with lovely effects.",
    ),
    (
        1,
        "Tent pole snapped in a light breeze",
        "First night camping, a gentle wind and a pole cracked in half. We spent the night in the "
        "car.",
    ),
    (
        5,
        "Yoga teachers who work around my bad knee",
        "Classes for every level, and every pose gets adjusted when I need it. I've never felt "
        "better.",
    ),
    (
        4,
        "A lunch deal that's hard to beat",
        "Three courses for a very fair price. It's not fine dining, but it's very decent and "
        "quick.",
    ),
    (
        5,
        "Knife that stays sharp for months",
        "Slices tomatoes paper thin and has kept its edge through months of daily cooking. "
        "Balanced, comfortable handle, and it looks beautiful on the magnetic strip.",
    ),
    (
        2,
        "Pool closed for our entire stay",
        "We chose this hotel for its pool, which was shut for repairs without warning. Otherwise "
        "it was fine.",
    ),
    (
        1,
        "Gave up after the pilot",
        "Cardboard characters, a ridiculous premise and a cliffhanger I couldn't care less about. "
        "Deleted from my list.",
    ),
    (
        5,
        "Courtroom drama with a shock verdict",
        "Sharp dialogue, real tension, and a closing speech I'd rewatch just for itself.",
    ),
    (
        2,
        "Three pop-ups before I see the ingredients",
        "The recipes themselves are fine. Getting to them is a chore.",
    ),
    (
        4,
        "Bus tour covered a lot, rushed everywhere",
        "We saw an amazing amount in one day, but never had more than twenty minutes at any stop.",
    ),
    (
        1,
        "Manager yelled at a waitress mid-meal",
        "It was so uncomfortable we couldn't enjoy our meal, which was cold anyway.",
    ),
    (
        5,
        "Where our first date turned into a tradition",
        "Candlelit, quiet enough to talk, and sharing plates gave us something to bond over. We've "
        "gone back every year since.",
    ),
    (
        4,
        "Solid password manager, fussy browser extension",
        "The app itself is excellent. The extension sometimes needs a nudge before it fills "
        "anything in.",
    ),
    (
        2,
        "Not the swim school it used to be",
        "Classes are bigger now and the kids get less attention. My son hasn't progressed in "
        "months.",
    ),
    (
        1,
        "Charged twice and refused a refund",
        "The hotel took payment twice and now insists I stayed two nights. Still fighting them a "
        "month later.",
    ),
    (
        5,
        "An accessible room done properly",
        "Wide doors, a real roll-in shower and staff who asked what I needed. For once I didn't "
        "have to fight for anything.",
    ),
    (
        2,
        "Kids' scooter wobbles at speed",
        "My daughter likes the colour, but the front wheel shakes once she gets going. I tightened "
        "everything and it still wobbles.",
    ),
    (
        1,
        "Every tap freezes for a minute",
        "They told me my two year old phone is too old for the app. Completely unusable.",
    ),
    (
        4,
        "Decent grocery delivery, odd substitutions",
        "Usually on time and the produce is fresh. Occasionally oat milk turns up instead of "
        "cream.",
    ),
    (
        1,
        "Repair shop swapped parts in my phone",
        "It came back with a cheaper screen and an older battery. They denied it, of course.",
    ),
    (
        5,
        "No ads, no loot boxes, just great puzzles",
        "A hundred handmade levels and not a single attempt to sell me anything. I bought copies "
        "for the whole family.",
    ),
    (
        4,
        "Warm gloves, clumsy on touchscreens",
        "My hands stayed warm on a freezing morning run. The touchscreen fingertips only work "
        "about half the time, though.",
    ),
    (
        2,
        "Preachy rather than moving",
        "A worthy subject handled with all the subtlety of a lecture. Every character speaks in "
        "slogans.",
    ),
    (
        5,
        "Grocery delivery with no substitutions, ever",
        "Fresh produce, always in the one hour slot. I've stopped going to the supermarket.",
    ),
    (
        4,
        "A cartoon I now watch after bedtime",
        "I started watching it with my son and now watch it after he's asleep. A few episodes are "
        "weak, but most are clever.",
    ),
    (
        1,
        "New textbook edition is a rip-off",
        "Half the chapters are identical to the previous edition, and the answers at the back are "
        "wrong. Charging full price for this is insulting.",
    ),
    (
        2,
        "Edible sandwich, drinkable coffee",
        "The sandwich was edible and the coffee drinkable. I wouldn't go out of my way.",
    ),
    (
        4,
        "Delicious, if a little noisy",
        "The open kitchen is fun to watch, but the clatter makes it loud. The food more than makes "
        "up for it.",
    ),
    (
        2,
        "Honeymoon suite with a car park view",
        "Dated decor and a hot tub that didn't work. Not the romance we'd hoped for.",
    ),
    (
        5,
        "Dry feet after an hour of slush",
        "Waited for a late bus in ankle deep slush wearing these winter boots and never felt the "
        "cold. Good grip on ice, and no breaking in needed.",
    ),
    (
        1,
        "Trailer sold a space adventure",
        "The film is ninety minutes in one grey room with people arguing. I felt robbed.",
    ),
    (
        5,
        "An adaptation that does the book justice",
        "Faithful where it matters and brave where it needed to change. The casting is perfect "
        "down to the smallest roles.",
    ),
    (
        4,
        "Cosy forest cabin, weak shower",
        "A lovely spot among the trees with a great fireplace. The shower was more of a drizzle.",
    ),
    (
        2,
        "Scanner app stamps a logo on every page",
        "The scans look good, but the free version adds a big watermark across each one.",
    ),
    (
        1,
        "Refused my mother a glass of water",
        "On a boiling day they wouldn't give my elderly mum tap water unless we bought drinks. "
        "Shameful.",
    ),
    (
        5,
        "The chef came out to say hello",
        "After we praised the fish he came to our table and explained how he'd cooked it. Lovely "
        "touch, lovely food.",
    ),
    (
        2,
        "Three days turned into three weeks",
        "My laptop works now, but the repair shop gave no updates the whole time.",
    ),
    (
        1,
        "The spa was a cloudy basement pool",
        "With a broken sauna. False advertising, pure and simple.",
    ),
    (
        4,
        "Capable video editor, slow exports",
        "It handles everything I need for school projects. Exporting takes a while on my laptop.",
    ),
    (
        1,
        "Three weeks of video work corrupted",
        "The editor crashed and the project file never opened again. No recovery tool, no apology.",
    ),
    (
        2,
        "Air fryer is smaller than it looks",
        "Cooks well enough, but the basket holds about two portions of chips. For a family of four "
        "it isn't much use.",
    ),
    (
        5,
        "A night bus that let me actually sleep",
        "Reclining seats, blankets and a smooth driver. I arrived rested and saved the price of a "
        "hotel.",
    ),
    (
        4,
        "Driving school good value, too many instructors",
        "Helpful lessons at a fair price. I had three different instructors, which was confusing.",
    ),
    (
        4,
        "Food processor that mostly delivers",
        "Slices and grates quickly and the bowl is generous. It's a bit of a pain to reassemble, "
        "so I only use it for big batches.",
    ),
    (
        2,
        "The laugh track does all the work",
        "Take away the canned laughter and there's barely a joke in the episode. I lasted three "
        "episodes of this sitcom.",
    ),
    (
        1,
        "Paid for ten lessons, got three",
        "The driving school cancelled the rest and refuses a refund. Avoid.",
    ),
    (
        5,
        "Family calendar that keeps us sane",
        "Shared calendars, a colour for each child, and reminders that work. Nobody misses "
        "football practice now.",
    ),
    (
        1,
        "Phone stopped charging after a month",
        "It worked fine until week five, then refused to charge with any cable. The shop says it's "
        "my fault. It isn't.",
    ),
    (
        2,
        "Good pie, pale undercooked chips",
        "The pie was decent, but the chips were pale and hard in the middle. The beer was the best "
        "part.",
    ),
    (
        4,
        "Good, though season one was better",
        "Still funny and still well acted, but the new storyline is stretched across too many "
        "episodes.",
    ),
    (
        5,
        "Found the roof leak three others missed",
        "He found it in an hour, and the loft has been dry all winter. Worth every penny.",
    ),
    (
        5,
        "Poetry collection I keep going back to",
        "Short poems about ordinary mornings that somehow make me look at my own kitchen "
        "differently. I have lent it out three times and bought it again twice.",
    ),
    (
        1,
        "I was rooting for the villain",
        "The hero is cruel to everyone and the film still wants us to cheer him on. Unbearable.",
    ),
    (
        4,
        "Best bagels around, grumpy cashier",
        "The bagels are easily the best in the area. The man at the till acts like you're "
        "interrupting him, though.",
    ),
    (
        2,
        "B&B hosts a little too attentive",
        "Good breakfast, but the owners kept popping into our room to check on things. It was "
        "uncomfortable.",
    ),
    (
        5,
        "Sitcom comfort food at its finest",
        "Every episode is twenty-two minutes of warmth and terrible puns. I've watched the whole "
        "thing four times.",
    ),
    (
        2,
        "Two minutes away means fifteen",
        "The transit app's times are unreliable, which isn't much use when you're standing in the "
        "rain.",
    ),
    (
        4,
        "Fine for a one night stopover",
        "Clean and convenient. The restaurant closed early, so dinner came from the vending "
        "machine.",
    ),
    (
        1,
        "Sold us stale cakes for a birthday",
        "Rock hard croissants and a cake that was clearly days old. And it wasn't cheap either.",
    ),
    (
        2,
        "Fine treatment, billed twice",
        "The dental work was okay, but sorting out the double charge took ages.",
    ),
    (
        5,
        "A breakfast burrito that lasts until dinner",
        "Huge and packed with eggs, beans and potatoes. I didn't need lunch, and the house hot "
        "sauce is addictive.",
    ),
    (
        1,
        "Threatened with a fee for a bad review",
        "The manager said he'd charge us if we wrote one. So here it is.",
    ),
    (
        4,
        "Transit app is great except at night",
        "Daytime times are spot on. Night buses often show up as cancelled when they're actually "
        "running.",
    ),
    (
        4,
        "Calming yoga teacher, crowded class",
        "Her instructions are clear and soothing. The class is packed, so the mats are almost "
        "touching.",
    ),
    (
        5,
        "Low beams, creaky floors, warmest welcome",
        "This historic inn isn't modern and doesn't pretend to be, but the staff made it feel like "
        "coming home.",
    ),
    (
        2,
        "Socks that end up around my toes",
        "Soft and nicely coloured, but the elastic gave up after a few washes. By lunchtime they "
        "have slid down inside my shoes.",
    ),
    (
        1,
        "Six months of events gone overnight",
        "The calendar app wiped everything, and support suggested restoring a backup I didn't know "
        "I needed.",
    ),
    (
        5,
        "Reading on my phone is finally enjoyable",
        "Comfortable fonts, a true dark mode and smooth page turns. This reader app got the "
        "details right.",
    ),
    (
        4,
        "I was sceptical about a mouse this cheap",
        "It shouldn't work this well for the price. Tracking is smooth and it pairs instantly, "
        "though the scroll wheel rattles slightly.",
    ),
    (
        2,
        "The dragons look amazing, the story doesn't",
        "Lovely effects can't save a plot you've seen a hundred times before. I was bored by the "
        "second act.",
    ),
    (
        1,
        "Pest control left poison within our dog's reach",
        "We had to rush him to the vet. They made everything worse.",
    ),
    (
        4,
        "Predictable biopic, superb lead",
        "It follows the usual rise-fall-comeback pattern, but the performance as the ageing "
        "composer is outstanding.",
    ),
    (
        2,
        "Dim sum arrived all at once",
        "Everything came in one rush, and by the time we reached the last baskets they'd gone "
        "cold.",
    ),
    (
        1,
        "Jacket zip broke on day one",
        "I pulled the zip up once and the slider came off in my hand. Can't even close the thing "
        "now. Rubbish.",
    ),
    (
        5,
        "Accountant who saved my small business a fortune",
        "She reorganised our books and found savings I had no idea existed. Friendly and clear "
        "throughout.",
    ),
    (
        5,
        "I never expected to love a board game",
        "I usually roll my eyes at game night, but this one is simple to teach and deep enough "
        "that we still find new strategies. Even our teenager asks to play.",
    ),
    (
        1,
        "Forced romance and a cringe musical number",
        "Forced romance, dialogue nobody would ever say, and a musical number that made me hide "
        "behind a cushion.",
    ),
    (
        4,
        "I'll admit the hype is mostly deserved",
        "I rolled my eyes at the queue, then ate the fried chicken sandwich. It's really good, if "
        "not life changing.",
    ),
    (
        2,
        "Not worth the detour",
        "The guidebook raved about this village. It's one street of souvenir shops and a car park.",
    ),
    (
        5,
        "Hand drawn film about grief, a little gem",
        "Fluid animation, gorgeous backgrounds, and a story about loss that kids and adults can "
        "both understand.",
    ),
    (
        1,
        "Fish still frozen in the middle",
        "Crispy batter outside, ice cold inside. Sent it back, waited another forty minutes, and "
        "got the same again.",
    ),
    (
        2,
        "Reminders arrive after the event starts",
        "Alerts pop up five minutes late, and I missed a dentist appointment because of it.",
    ),
    (
        4,
        "The motel looks tired, the room wasn't",
        "From the car park it looked a bit grim, but inside the room was clean, quiet and "
        "comfortable.",
    ),
    (
        5,
        "Riverside terrace, perfect cappuccino",
        "A cappuccino and a slice of lemon cake over the river is my favourite hour of the week. "
        "Never had a bad cup here.",
    ),
    (
        1,
        "Mice droppings in the chalet kitchen",
        "We heard scratching all night. The owner said that's the countryside for you.",
    ),
    (
        4,
        "Quite happy with this to-do app",
        "Simple, quick and syncs well. I'd like recurring tasks to be a bit more flexible.",
    ),
    (
        2,
        "Pest control only half worked",
        "The mice went quiet for a while, then came back, and the second visit cost extra.",
    ),
    (
        1,
        "Does nothing it claims, reviews clearly bought",
        "The app is useless, and all the glowing reviews look fake. Avoid.",
    ),
    (
        2,
        "Spirit level reads slightly off",
        "I hung three shelves with it and all three are a little crooked. Checked against a "
        "friend's level and mine is out.",
    ),
    (
        4,
        "Locksmith was quick, the fee wasn't small",
        "He got me back in within ten minutes. The call-out charge made my eyes water.",
    ),
    (
        5,
        "Car hire with no nasty surprises",
        "Booked online, collected in five minutes, no hidden extras, and no fuss about a scratch "
        "that was already there.",
    ),
    (
        4,
        "Pretty dress that creases at a glance",
        "Lovely cut and it got compliments all evening. It's hand wash only, and it wrinkles the "
        "moment you sit down.",
    ),
    (
        1,
        "Gym changing rooms are disgusting",
        "Mould in the showers, broken lockers and a smell you can't forget. Cancelled after a "
        "week.",
    ),
    (
        2,
        "Miscast lead drags it down",
        "Everyone else is great, but the lead seems bored in every scene, and it's hard to care "
        "when he doesn't.",
    ),
    (
        5,
        "Backup software saved my thesis",
        "My laptop died a week before the deadline. Everything was restored in twenty minutes. I "
        "could have cried.",
    ),
    (
        5,
        "Passed first time, after years of nerves",
        "My driving instructor was calm, encouraging and funny. I'd recommend him to anyone who's "
        "anxious.",
    ),
    (
        1,
        "Toy drone battery swelled up",
        "After the third charge the battery bulged like a pillow. I threw it out in a metal bin. "
        "How is this on sale for children?",
    ),
    (
        4,
        "Entertaining nonsense",
        "The plot falls apart if you think about it for more than a second. Don't, and you'll have "
        "a great time.",
    ),
    (
        2,
        "A bit grubby, sadly",
        "Sticky tables and a bathroom that hadn't been cleaned in a while. The noodles were "
        "actually fine.",
    ),
    (
        5,
        "Tiny speaker, enormous sound",
        "It filled the whole garden and the bass did not distort even at full volume, which I "
        "honestly didn't expect from something the size of a coffee mug. It ran through an eight "
        "hour barbecue and still had charge left for the washing up.",
    ),
    (
        4,
        "Gorgeous terrace, so-so salad",
        "The setting is lovely on a sunny day. My salad was a bit dull, but the homemade lemonade "
        "was excellent.",
    ),
    (
        2,
        "Non-smoking room that smelled of smoke",
        "Stale cigarette smell in the curtains and bedding. Breakfast was the only highlight.",
    ),
    (
        1,
        "The effects look twenty years old",
        "For a big budget film, the dragon looked like a screensaver. I couldn't take a single "
        "scene seriously.",
    ),
    (
        1,
        "Nice decor, dirty cutlery, vanishing waiter",
        "Dirty cutlery, cold food and a waiter who vanished for half an hour. Avoid at all costs.",
    ),
    (
        4,
        "New hire car, long queue at the desk",
        "The car was spotless and drove well. The queue to collect it took nearly an hour.",
    ),
    (
        2,
        "Can't edit messages or search old chats",
        "The chat app works, but it's missing basic features and feels unfinished.",
    ),
    (
        5,
        "Heart pounding for the final half hour",
        "Brilliant tension throughout, and not a single plot hole I could find. I needed a walk "
        "afterwards to calm down.",
    ),
    (
        2,
        "Meh, the locksmith did the job",
        "He changed the lock, but he was grumpy, left metal shavings everywhere and wouldn't give "
        "a receipt.",
    ),
    (
        5,
        "Dim sum I couldn't fault",
        "Dim sum trolleys that never stop, everything steaming hot, and custard buns I still dream "
        "about. Weekend tradition now.",
    ),
    (
        1,
        "Bags searched in the lobby at check-out",
        "Staff accused us of taking towels in front of everyone. Humiliating and completely "
        "unfounded.",
    ),
    (
        4,
        "Good chat app, pushy sticker suggestions",
        "Messages arrive quickly and calls are clear. The sticker suggestions pop up constantly, "
        "which is annoying.",
    ),
    (
        5,
        "A treehouse stay the kids will never forget",
        "Rope bridges, a tiny stove and owls at night. My daughter says it's the best place in the "
        "world.",
    ),
    (
        2,
        "Kids' tablet is painfully slow",
        "The bumper case is great and it survives drops. But apps take a minute to open and my son "
        "gets bored waiting.",
    ),
    (
        1,
        "Dozens of spam messages a day",
        "The chat app has no way to block the bots. Completely unusable.",
    ),
    (
        4,
        "Carpet cleaner beat most of the stains",
        "The carpets look much brighter. The old red wine mark is still faintly there.",
    ),
    (
        4,
        "Handy stud finder, occasionally confused",
        "Found the joists in my hallway first time. It gave a false reading near a pipe, so double "
        "check before drilling.",
    ),
    (
        5,
        "simple, fast, no nonsense to-do list",
        "opens instantly, does exactly what it says, no accounts, no upsells. i wouldn't change a "
        "thing.",
    ),
    (
        1,
        "Late, rude and incompetent",
        "From the first call to the last. The worst service I've ever paid for; please save "
        "yourself the trouble.",
    ),
    (
        2,
        "Not much of a thriller",
        "There's exactly one tense scene in the whole film. The rest is people driving and looking "
        "worried.",
    ),
    (
        2,
        "Twenty minutes just to get menus",
        "Another forty for the food. It was decent when it came, but the evening felt wasted.",
    ),
    (
        1,
        "Scissors that fold paper instead of cutting",
        "Not fabric, not card, just ordinary paper, and they still can't cut it. I don't "
        "understand how they passed any test.",
    ),
    (
        4,
        "Quiet and thoughtful, a touch too quiet",
        "Beautifully shot and well acted. I did drift off for a few minutes in the middle, but I "
        "liked it overall.",
    ),
    (
        5,
        "My old laptop brought back to life",
        "I was ready to throw it away. A new battery and a proper clean, and it runs like new.",
    ),
    (
        2,
        "Ski lodge heating barely worked",
        "We slept in our jackets most nights. The slopes were great, at least.",
    ),
    (
        5,
        "Hoodie softer than anything I own",
        "Thick, soft fabric that has not pilled after dozens of washes. The hood is deep enough "
        "for a real rainy walk and the pockets are huge.",
    ),
    (
        1,
        "The end credits were the highlight",
        "Dull, confusing and far too long. Zero stars if I could.",
    ),
    (
        4,
        "Finally more than one vegetarian main",
        "Four proper vegetarian dishes instead of one sad risotto. The service was a little "
        "distracted, but we'll return.",
    ),
    (
        4,
        "Holiday park the kids enjoyed",
        "Plenty for them to do and the lodge was spacious. The onsite restaurant was only average.",
    ),
    (
        5,
        "Don't give up after the pilot",
        "I thought the first episode was merely good. By episode six it was the best thing on "
        "television. Every episode tops the last.",
    ),
    (
        2,
        "Not the heist thriller the cover promises",
        "The blurb promises a daring robbery; the book delivers two hundred pages of board "
        "meetings. Nice sentences, dull story.",
    ),
    (
        1,
        "Takeaway noodles straight in the bin",
        "Soggy, greasy and oddly sweet. Nobody in the family could finish a single portion.",
    ),
    (
        1,
        "Four star package hotel was half built",
        "The package hotel was half built, and the operator just keeps closing my complaint.",
    ),
    (
        5,
        "Pepper sauce I'd drink from a glass",
        "The steak was cooked exactly as I asked and properly rested. Faultless, and the best I've "
        "eaten.",
    ),
    (
        4,
        "Dolls house with tiny fiddly furniture",
        "Beautifully made and my daughter adores it. Some of the chairs are so small they keep "
        "getting lost under the sofa.",
    ),
    (
        2,
        "Background noise while folding laundry",
        "I left the room twice and didn't miss anything. That says it all really.",
    ),
    (
        1,
        "Printer jams on every other page",
        "Every second page jams, and the ink costs more than the printer did. I have never hated a "
        "machine this much.",
    ),
    (
        4,
        "Nothing deep, but fine with popcorn",
        "I won't remember it next month, but it kept the four of us entertained on a Friday night.",
    ),
    (
        2,
        "Not worth an hour's queue",
        "Waited an hour for the famous doughnuts. They were nice. Just nice.",
    ),
    (
        5,
        "Budget hotel that punches above its weight",
        "I didn't expect much for the price. The room was spotless and the breakfast buffet was "
        "enormous.",
    ),
)
