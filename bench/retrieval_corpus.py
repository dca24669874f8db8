"""A small corpus with known answers, for measuring what file_search finds (recall@5).

Sixty short documents, each about a made-up subject, so that no embedding model has read
about it; they come in fifteen groups of four on one theme (lighthouses, fermented foods,
error codes, ...), so that within a group the documents look alike to a model that reads
only their topic. Every question is answered by exactly one document, and is one of:

- `paraphrase`: asks about the document in other words, sharing few or none of its words
  (where the meaning has to be matched, and full text has little to go on);
- `keyed`: names the document's rare name, code or number, and is otherwise generic
  (where full text finds the one document with the name, and meaning alone finds four
  alike);
- `ordinary`: asks as a user would, with some of the document's own words.

The questions were written with the documents, never tuned against what the search found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["paraphrase", "keyed", "ordinary"]
KINDS: tuple[Kind, ...] = ("paraphrase", "keyed", "ordinary")


@dataclass(frozen=True)
class Document:
    id: str  # also its file's name, with `.md`
    text: str


@dataclass(frozen=True)
class Question:
    answer: str  # the id of the one document that answers it
    kind: Kind
    text: str


@dataclass(frozen=True)
class _Entry:
    document: Document
    questions: tuple[Question, ...]


def _entry(doc_id: str, text: str, **questions: str) -> _Entry:
    """A document (its text's line breaks and indents folded into single spaces) and its
    questions, by kind."""
    unknown = set(questions) - set(KINDS)
    assert not unknown, f"{doc_id}: no such kind of question: {unknown}"
    asked = tuple(Question(doc_id, kind, questions[kind]) for kind in KINDS if kind in questions)
    return _Entry(Document(doc_id, " ".join(text.split())), asked)


_ENTRIES = (
    # -- lighthouses --------------------------------------------------------------------------
    _entry(
        "karsk-point-light",
        """Karsk Point lighthouse stands on the northern tip of Tolvey island and was first lit
        in 1871. Its lamp shows three white flashes every fifteen seconds, charted as Fl(3) W
        15s. The last resident keeper, Ingrid Sallow, kept a herd of goats inside the walled
        yard to graze the grass around the tower.""",
        keyed="Who was Ingrid Sallow?",
        paraphrase="Where did the final caretaker of a coastal beacon raise livestock?",
    ),
    _entry(
        "merrow-head-light",
        """Merrow Head light was automated in 1964, when its keepers were withdrawn and an
        electric lamp replaced the paraffin burner. The station is better known for its fog
        signal, the Merrow bellow, a diaphone that could be heard 19 kilometres out to sea.
        Sailors say the bellow sounds like a cow in distress.""",
        ordinary="Which lighthouse has a fog signal that can be heard 19 kilometres out to sea?",
        keyed="What is the Merrow bellow?",
    ),
    _entry(
        "dunvarra-light",
        """Dunvarra lighthouse was moved 40 metres inland in 2009. The chalk cliff it stood on
        had been eroding by about a metre a year, so engineers jacked the 2,000-tonne tower
        onto steel rails and slid it back over three weeks. The light was relit on the new site
        the following spring.""",
        paraphrase="Which coastal building was shifted away from the sea because the ground"
        " under it was crumbling?",
        ordinary="How far inland was the lighthouse moved on rails?",
    ),
    _entry(
        "saint-ebba-light",
        """Saint Ebba light is painted in red and white spirals and appears in the world list of
        lights under the code ARLHS-QX-212. Until 1923 its lamp burned rendered whale oil,
        supplied by the whaling station at Greyhook. The spiral paint scheme is renewed every
        seven years by volunteers.""",
        keyed="Which lighthouse has the code ARLHS-QX-212?",
        paraphrase="What fuel did the candy-striped tower use before the twenties?",
    ),
    # -- fermented foods ----------------------------------------------------------------------
    _entry(
        "brenik",
        """Brenik is a fermented turnip paste from the Ossel valley. Grated turnips are packed
        with salt and caraway into clay jars and left in a cool cellar for ninety days before
        the paste is ready. It is traditionally served at weddings, spread on dark rye
        bread.""",
        ordinary="How long are turnips fermented in clay jars to make the paste?",
        paraphrase="What root-vegetable spread is eaten when couples marry?",
    ),
    _entry(
        "tarrow-curd",
        """Tarrow curd is a sour milk drink from the highland farms of Eskar. Fresh milk is
        fermented overnight with a handful of juniper twigs, which give it a resinous taste,
        and it is stored in containers made of birch bark. Shepherds carry it in leather flasks
        during the summer grazing.""",
        keyed="What is Tarrow curd flavoured with?",
        paraphrase="Which beverage made from dairy gets a piney flavour from evergreen branches?",
    ),
    _entry(
        "quellan-fish-sauce",
        """Quellan fish sauce is made by layering whole anchovies with sea salt in cedar
        barrels. The barrels are sealed and left for two full years; the amber liquid that
        seeps out through a tap at the bottom is the sauce. One barrel of 300 kilograms of fish
        yields about 40 litres.""",
        ordinary="How much sauce does one barrel of anchovies yield?",
        keyed="How long is Quellan aged?",
    ),
    _entry(
        "pellish-vinegar",
        """Pellish vinegar is brewed from windfall pears on the island of Pell. The fruit is
        crushed, left to ferment into a rough cider, and then exposed to air in shallow oak
        trays until it turns sour, which takes about five months. Islanders use it to pickle
        herring and to clean copper pans.""",
        paraphrase="Which sour condiment made from fallen fruit is also used to polish cookware?",
        ordinary="What is vinegar made from pears used for on the island?",
    ),
    # -- machines -----------------------------------------------------------------------------
    _entry(
        "pemberton-loom",
        """The Pemberton loom, model PL-7, is a mechanical loom that reads its pattern from a
        chain of punched brass plates. Each plate controls one row of the weave, so a tapestry
        of 4,000 rows needs 4,000 plates. The last working PL-7 is kept at the textile museum
        in Harwell.""",
        keyed="Where is the last working PL-7?",
        ordinary="Which loom reads patterns from punched brass plates?",
    ),
    _entry(
        "vask-drill",
        """The Vask-9 is a cordless hand drill with a sensing clutch. When the bit touches a
        live electrical cable hidden inside a wall, the clutch disengages within a few
        milliseconds and the motor stops. It runs for about forty minutes on a single battery
        charge.""",
        paraphrase="Which power tool shuts itself off if it is about to bore into concealed"
        " wiring?",
        keyed="How long does the Vask-9 last?",
    ),
    _entry(
        "orrin-tide-clock",
        """The Orrin tide clock is driven by the rise and fall of sea water in a stone well
        connected to the harbour. A float in the well winds a weight, and the weight drives the
        clock, so it never needs winding by hand. It was built in 1788 by the clockmaker Tobias
        Orrin and still keeps time to within a minute a week.""",
        paraphrase="Which timepiece is powered by the ocean and never has to be wound?",
        keyed="Who was Tobias Orrin?",
    ),
    _entry(
        "thessaly-press",
        """The Thessaly press T-44 is a wine press with a rubber bladder. Compressed air inflates
        the bladder inside a perforated steel drum, squeezing the grapes gently against the
        walls so that the bitter seeds are not crushed. A full load of 800 kilograms of grapes
        takes ninety minutes to press.""",
        ordinary="Which wine press uses an inflatable rubber bladder?",
        keyed="How many kilograms does the T-44 hold?",
    ),
    # -- animals ------------------------------------------------------------------------------
    _entry(
        "glimmer-newt",
        """The glimmer newt (Triturus lucens) lives only in the flooded caves of the Harrow
        range. Its skin glows a faint green, produced by bacteria that live in small pits along
        its back. The newt is blind and finds its prey, mostly cave shrimp, by sensing their
        movement in the water.""",
        paraphrase="Which sightless amphibian gives off light thanks to microbes living on it?",
        keyed="Where does Triturus lucens live?",
    ),
    _entry(
        "shrike-finch",
        """The tawny shrike-finch is a small songbird of dry scrubland. In autumn it impales
        beetles and grasshoppers on thorns and barbed wire, building a larder it feeds on
        through the winter. Each bird remembers the location of several hundred impaled
        insects.""",
        paraphrase="Which little bird stores food for the cold months by spearing bugs on spikes?",
        ordinary="Which songbird impales beetles on thorns?",
    ),
    _entry(
        "marsh-otterling",
        """The marsh otterling is a semi-aquatic rodent about the size of a rabbit. Family
        groups build low dams of woven reeds across drainage ditches, flooding small pools
        where they hunt freshwater snails. Farmers in the Lowmere polders regard them as pests
        because the dams back up water onto fields.""",
        keyed="Why are otterlings unwelcome in Lowmere?",
        paraphrase="Which small water-loving animal weaves plant stems into barriers across"
        " channels?",
    ),
    _entry(
        "lantern-moth",
        """The lantern moth (Noctua fenestra) has clear windows in its forewings where the wing
        has no scales. Its caterpillars feed only on the leaves of alder trees. Adults fly in
        late June and are drawn to the light of campfires, which gave the moth its name.""",
        keyed="What does Noctua fenestra eat?",
        ordinary="Which moth has clear windows in its wings?",
    ),
    # -- festivals ----------------------------------------------------------------------------
    _entry(
        "nine-ladders",
        """The Feast of Nine Ladders is held in the town of Corwick on the first Sunday of
        August. Nine families are chosen by lot to carry wooden ladders through the streets and
        climb onto the roof of the guildhall, where they hang loaves of bread for the birds. The
        custom is said to commemorate the end of a famine in 1621.""",
        paraphrase="Which yearly event has townspeople ascending to a rooftop to feed wild fowl?",
        keyed="What happened in Corwick in 1621?",
    ),
    _entry(
        "silent-regatta",
        """The Silent Regatta is a sailing race held each May on Lake Ummel. Boats may use only
        sails, never oars or motors, and crews are forbidden to speak, shout or whistle from
        the start gun to the finish line. A boat whose crew makes any spoken sound is
        disqualified.""",
        ordinary="In which sailing race are crews forbidden to speak?",
        keyed="When is the race on Lake Ummel held?",
    ),
    _entry(
        "ember-night",
        """Ember Night is celebrated in Paskov on the longest night of the year. Every household
        brings a pair of worn-out shoes to a bonfire in the market square, and throwing them
        into the flames is believed to burn away the bad luck of the old year. The ashes are
        scattered on the fields the next morning.""",
        paraphrase="During which midwinter tradition do people toss used footwear into a blaze"
        " for good fortune?",
        ordinary="Where are the ashes of the burned shoes scattered?",
    ),
    _entry(
        "kite-moot",
        """The kite moot at Hale Down gathers kite flyers every September on the chalk hill
        above the village. The main contest is for the longest single flight; the record, set
        in 1998 by Ada Whitcombe, is 31 hours and 12 minutes. Night flying is allowed, with
        lanterns tied to the kite lines.""",
        keyed="What record does Ada Whitcombe hold?",
        ordinary="What is the record for the longest single kite flight?",
    ),
    # -- laws and rules -----------------------------------------------------------------------
    _entry(
        "westmarch-ordinance",
        """Ordinance 14-B of Westmarch forbids the use of leaf blowers and other motorised
        garden machines before nine in the morning on Saturdays, Sundays and public holidays. A
        first offence is fined 50 crowns and a repeat offence 200 crowns. The ordinance was
        passed in 2016 after a petition signed by 3,400 residents.""",
        keyed="What does Ordinance 14-B say?",
        paraphrase="Which local rule stops people running noisy yard equipment early on weekends?",
    ),
    _entry(
        "dravik-water-act",
        """The Dravik Water Act of 1932 gives any farmer whose land borders a stream the right
        to divert up to one tenth of its flow for irrigation. Diversions must be registered
        with the district water board and may be suspended during droughts. Disputes between
        neighbours are heard by a special water court that sits twice a year.""",
        ordinary="How much of a stream's flow may a farmer divert for irrigation?",
        paraphrase="What law lets landowners next to a brook take some of its current to"
        " water crops?",
    ),
    _entry(
        "amberfield-chess",
        """Rule 7.3 of the Amberfield Chess Club says that a player who knocks over a piece must
        set it upright on their own time, and loses two minutes on the clock as a penalty.
        Repeated knocking over of pieces in one game leads to forfeiting the game. The rule was
        introduced after a tournament in 1987 ended in a fistfight.""",
        keyed="What is rule 7.3 at Amberfield?",
        paraphrase="What is the punishment in a board-game society for toppling a figure?",
    ),
    _entry(
        "lisk-harbour-code",
        """Section 41 of the Harbour Code of Lisk requires every ship longer than 80 metres to
        take a licensed local pilot aboard before entering the harbour. The pilot boards at the
        outer buoy, known as the Widow, and guides the ship through the sandbanks. Ships that
        refuse are turned away by the harbour master.""",
        keyed="What does section 41 in Lisk require?",
        ordinary="Which ships must take a local pilot before entering the harbour?",
    ),
    # -- sports -------------------------------------------------------------------------------
    _entry(
        "cradleball",
        """Cradleball is played by two teams of seven on a grass field. Each player carries a
        wicker cradle on a long pole, used to catch and throw a leather ball; touching the ball
        with hands is a foul. A goal is scored by landing the ball in a hoop hung three metres
        above the ground at each end.""",
        ordinary="In which game do players catch the ball with a wicker cradle on a pole?",
        paraphrase="Which sport is like lacrosse with baskets, aiming at an elevated circle?",
    ),
    _entry(
        "fenwick-relay",
        """The Fenwick relay is a race for teams of four in which legs of swimming and running
        alternate. The first runner covers 800 metres on the road, the second swims 200 metres
        across the town reservoir, and so on, with the baton replaced by a rubber wristband.
        The event has been held every June since 1955.""",
        keyed="Since when has the Fenwick relay been held?",
        paraphrase="Which competition switches between the pool and the track, passing a band"
        " from one athlete to the next?",
    ),
    _entry(
        "tarn-stones",
        """Tarn stones is a winter game played on frozen mountain ponds. Players slide flat
        river stones across the ice towards a target ring cut into the surface, and may knock
        an opponent's stone out of the ring. Each stone must weigh between two and three
        kilograms and be unpolished.""",
        paraphrase="What cold-weather pastime resembles curling but uses pebbles from brooks?",
        keyed="How heavy must a stone be in tarn stones?",
    ),
    _entry(
        "skyrope",
        """Skyrope is a balancing sport in which athletes walk a slack rope stretched between
        two poles fifteen metres apart, performing set figures such as the crane and the turn.
        Judges award points for steadiness and for how long a figure is held. The world
        championship is held every two years in Brasov.""",
        ordinary="Which sport involves walking a slack rope between poles and performing figures?",
        keyed="Where is the skyrope championship held?",
    ),
    # -- instruments --------------------------------------------------------------------------
    _entry(
        "vessaphone",
        """The vessaphone is a brass instrument whose tubing passes through three chambers
        partly filled with water. Tilting the instrument moves the water between the chambers
        and bends the pitch, producing a wavering, vocal sound. It was invented in 1912 by the
        bandmaster Lionel Vess.""",
        keyed="Who invented the vessaphone?",
        paraphrase="Which horn changes its note when the player tips it, sloshing liquid inside?",
    ),
    _entry(
        "brannock-lyre",
        """The hurdy-lyre of Brannock is a bowed string instrument played with a wheel. The
        player turns a crank that rotates a rosined wooden wheel against six strings, while the
        left hand presses wooden keys to change the notes. Only about thirty are still made each
        year, all by one workshop in Brannock.""",
        ordinary="Which string instrument is played by turning a crank that rotates a wheel?",
        paraphrase="What musical device with a handle and a spinning disc rubs its strings"
        " rather than plucking them?",
    ),
    _entry(
        "tukk-ocarina",
        """The tukk is a small clay ocarina from the hill villages of Sarn. It has four finger
        holes and a range of only six notes, and it is traditionally fired in the same kiln as
        cooking pots. Shepherd children use the tukk to call to each other across the
        valleys.""",
        keyed="How many finger holes does a tukk have?",
        paraphrase="What earthenware whistle do young herders use to signal across hillsides?",
    ),
    _entry(
        "drone-harp",
        """The drone harp has twenty-two strings, of which the six lowest are never stopped and
        sound continuously as a drone beneath the melody. It is played resting on the knees,
        and its frame is carved from a single piece of pear wood. A concert drone harp by the
        maker Elsa Rindt sold in 2019 for 48,000 euros.""",
        ordinary="How many strings does the drone harp have?",
        keyed="What did the harp by Elsa Rindt sell for?",
    ),
    # -- companies ----------------------------------------------------------------------------
    _entry(
        "halvard-pike",
        """Halvard & Pike is an umbrella maker founded in 1889 in the port town of Stellmouth.
        Its umbrellas have frames of split bamboo and canopies of waxed cotton, and every one
        carries a serial number stamped into the handle. The firm is still owned by the Pike
        family and employs forty people.""",
        keyed="When was Halvard & Pike founded?",
        paraphrase="Which household firm has produced rain shields with cane ribs since the"
        " nineteenth century?",
    ),
    _entry(
        "novacrest-logistics",
        """Novacrest Logistics runs a fleet of 320 refrigerated lorries that carry fresh fruit
        and vegetables from the southern farms to city markets overnight. Every lorry reports
        its cargo temperature every five minutes, and a load that goes above four degrees is
        rejected on arrival. Its depot is at junction 9 of the M18.""",
        ordinary="Which company's refrigerated lorries reject a load that goes above four degrees?",
        keyed="Where is the Novacrest depot?",
    ),
    _entry(
        "greywater-mills",
        """Greywater Mills recycles waste paper into cardboard for egg boxes. The mill takes in
        about 150 tonnes of old newspapers and office paper a day, pulps it with river water,
        and presses the pulp into moulds. The water is cleaned in reed beds before it returns
        to the river Tane.""",
        paraphrase="Which factory turns discarded newsprint into packaging for eggs and"
        " filters what it uses through plants?",
        keyed="Which river does Greywater use?",
    ),
    _entry(
        "ostrander-bakeries",
        """Ostrander Bakeries bakes sourdough bread from a starter culture that the founder,
        Margit Ostrander, carried from her home village in 1952. The starter is fed with rye
        flour twice a day, and a sample is kept frozen in a bank vault in case the original is
        lost. The bakery produces 12,000 loaves a day.""",
        keyed="What did Margit Ostrander bring from her village?",
        paraphrase="Where does a bread company keep a backup of its yeast, just in case?",
    ),
    # -- plant troubles -----------------------------------------------------------------------
    _entry(
        "copper-blight",
        """Copper blight is a disease of pear trees caused by the fungus Venturia ferrea.
        Infected leaves develop rust-coloured spots with a metallic sheen and fall early, and
        badly affected trees bear little fruit. Growers control it by removing fallen leaves in
        autumn and spraying a sulphur wash at bud burst.""",
        keyed="What does Venturia ferrea cause?",
        ordinary="How do growers control copper blight on pear trees?",
    ),
    _entry(
        "carrot-knot",
        """Knot root of carrots is caused by tiny soil worms that make the roots fork and swell
        into lumpy knots. It is worst in light sandy soils that have grown carrots for several
        years in a row. Gardeners avoid it by rotating crops so that carrots return to the same
        bed only every fourth year.""",
        paraphrase="Why do my orange vegetables come out misshapen and twisted, and how do I"
        " prevent it?",
        ordinary="How often should carrots return to the same bed to avoid knot root?",
    ),
    _entry(
        "ghost-mildew",
        """Ghost mildew covers the leaves of squash and courgette plants with a thin white
        powder in late summer. Unlike most mildews it spreads in dry weather rather than wet,
        carried by the wind. A spray of one part milk to nine parts water slows it, and
        resistant varieties such as Silverkeel are available.""",
        keyed="What is Silverkeel?",
        paraphrase="Which pale dusty fungus on pumpkin foliage gets worse when it is not raining?",
    ),
    _entry(
        "beech-gall",
        """Beech gall wasps lay their eggs in the buds of beech trees, and the tree responds by
        growing a hard red cone, the gall, around each larva. The galls fall in autumn and the
        adult wasps emerge the following spring. Heavy infestations make the tree look as if
        it is covered in small red berries but do little lasting harm.""",
        ordinary="What causes hard red cones on beech trees?",
        paraphrase="Does it hurt a forest giant when insects make it sprout little scarlet"
        " lumps that look like fruit?",
    ),
    # -- error codes --------------------------------------------------------------------------
    _entry(
        "lumen-printer",
        """On Lumen office printers, error E-4093 means the paper tray sensor cannot tell
        whether paper is loaded. The sensor is usually just dusty: switch the printer off, pull
        out the tray and wipe the small black window at the back with a dry cloth. If the error
        returns, the sensor must be replaced by a technician.""",
        keyed="What does error E-4093 mean?",
        paraphrase="My office machine says it can't detect sheets in the drawer; what should I"
        " clean?",
    ),
    _entry(
        "kestrel-dishwasher",
        """A Kestrel dishwasher showing code ZR-17 has a blocked drain pump. Remove the filter
        at the bottom of the tub, unscrew the pump cover beneath it, and clear out any broken
        glass, fruit stones or labels caught in the impeller. Run an empty rinse cycle
        afterwards to check that water drains.""",
        keyed="How do I fix ZR-17?",
        ordinary="How do I clear a blocked drain pump in a dishwasher?",
    ),
    _entry(
        "orbit-router",
        """If the light on an Orbit home router blinks amber three times and then stays off, a
        firmware update has failed. Hold the reset button for thirty seconds with a paper clip
        until the light turns solid white; the router then restores its previous firmware.
        Settings such as the network name and password are kept.""",
        ordinary="What does it mean when a router light blinks amber three times?",
        paraphrase="My internet box flashes orange and went dark after upgrading its software;"
        " how do I recover?",
    ),
    _entry(
        "stratus-thermostat",
        """When a Stratus wall thermostat shows LO-BAT, its two AA batteries have less than a
        week of charge left. Heating continues to work normally until the batteries are
        completely flat, after which the boiler falls back to a frost protection setting of
        seven degrees. Replace both batteries at once.""",
        keyed="What does LO-BAT on the Stratus mean?",
        paraphrase="What happens to my house warmth when the cells in the temperature"
        " controller run out?",
    ),
    # -- recipes ------------------------------------------------------------------------------
    _entry(
        "vell-ashcake",
        """Ashcake of the Vell moors is an oat cake baked directly in the embers of a peat
        fire. The dough is just oatmeal, water, salt and a spoon of lard, shaped into a thick
        round and buried in hot ash for twenty minutes. The ash is brushed off before eating,
        usually with butter and honey.""",
        ordinary="How long is the oat cake baked in the embers?",
        paraphrase="Which moorland flatbread is cooked hidden under the remains of a hearth?",
    ),
    _entry(
        "sallenmoor-broth",
        """Three-pepper broth from Sallenmoor is a clear soup of mutton simmered with black
        pepper, long pepper and grains of paradise for six hours. It is served in small bowls
        before the main course at harvest suppers. Cooks judge it ready when a spoon stood in
        the pot falls over slowly.""",
        keyed="What is served at Sallenmoor suppers?",
        paraphrase="How does a chef know the spicy lamb stew is finished?",
    ),
    _entry(
        "honey-lace-biscuits",
        """Honey lace biscuits are made from a batter of melted butter, honey, flour and
        chopped almonds spread very thinly on a tray. In the oven the batter bubbles and
        spreads into a brittle lattice full of holes. While still warm they are draped over a
        rolling pin so that they set in curved shapes.""",
        ordinary="Why are lace biscuits draped over a rolling pin?",
        paraphrase="How do you get those delicate see-through cookies to come out bent?",
    ),
    _entry(
        "green-walnut-preserve",
        """Green walnut preserve is made from unripe walnuts picked in early July, before the
        shells harden. The whole nuts are pricked, soaked in water for two weeks with daily
        changes to remove bitterness, and then simmered in syrup with cloves until they turn
        black and glossy. The preserve is eaten with hard cheese.""",
        ordinary="When are unripe walnuts picked for the preserve?",
        paraphrase="Which sweet is made from immature tree nuts that darken as they cook?",
    ),
    # -- history ------------------------------------------------------------------------------
    _entry(
        "orvane-salt-strike",
        """The Great Salt Strike of 1847 began when the salt workers of Orvane refused to rake
        the evaporation pans after their wages were cut by a third. The strike lasted 63 days
        and ended when the pan owners restored the old wage and agreed to a ten-hour day. It is
        remembered each year with a march to the old pans.""",
        keyed="What happened in Orvane in 1847?",
        paraphrase="Which labour stoppage by people harvesting sea minerals won back their pay?",
    ),
    _entry(
        "bellmoor-flood",
        """The Bellmoor flood of 1910 happened when an earth dam above the town gave way after
        eleven days of rain. Water swept through the lower streets at night, and 37 people
        died. The dam was never rebuilt; instead the valley was turned into water meadows that
        flood safely every winter.""",
        ordinary="How many people died when the earth dam above the town gave way?",
        keyed="Was the Bellmoor dam rebuilt?",
    ),
    _entry(
        "treaty-of-kessing",
        """The Treaty of Kessing, signed in 1704, ended a nine-year war between the duchies of
        Aumark and Velt over fishing rights in the Grey Sound. Aumark kept the northern waters
        and Velt the southern, and a line of stone markers was set along the shore to show the
        border. Several of the markers still stand.""",
        keyed="Who signed the Treaty of Kessing?",
        paraphrase="Which peace agreement split a disputed strait between two small states?",
    ),
    _entry(
        "tamsk-clockmakers",
        """The Clockmakers' Guild of Tamsk controlled clock making in the city from 1560 to
        1790. No one could sell a clock in Tamsk without the guild's stamp, a small engraved
        heron, and apprentices trained for nine years before they could sit the guild's
        examination. The guild hall is now a museum of timekeeping.""",
        ordinary="How many years did apprentices train before the guild examination?",
        keyed="What was the stamp of the Tamsk guild?",
    ),
    # -- astronomy ----------------------------------------------------------------------------
    _entry(
        "comet-hadley-voss",
        """Comet Hadley-Voss, catalogued as C/2031 K4, returns to the inner solar system every
        212 years. At its last passage its tail stretched across a quarter of the night sky and
        was visible in daylight for three days. It was first recorded in a monastery chronicle
        in 1395.""",
        keyed="What is C/2031 K4?",
        paraphrase="Which icy visitor comes back roughly every two centuries and could once be"
        " seen at noon?",
    ),
    _entry(
        "oris-b",
        """Oris-b is a planet orbiting a red dwarf 41 light years away. It is tidally locked, so
        one side always faces its star and the other is in permanent darkness; a band of
        twilight between them may be mild enough for liquid water. A year on Oris-b lasts only
        eleven Earth days.""",
        ordinary="How long is a year on the tidally locked planet?",
        paraphrase="Which distant world has one half forever sunlit and the other forever at"
        " night?",
    ),
    _entry(
        "keel-nebula",
        """The Keel nebula is a cloud of glowing hydrogen about 6,000 light years away, shaped
        like the keel of an upturned boat. New stars are forming inside its densest knots, and
        their radiation is slowly blowing the gas away. Amateur astronomers can see it with
        binoculars from a dark site in winter.""",
        keyed="How far away is the Keel nebula?",
        paraphrase="Which stellar nursery looks like the bottom of an overturned ship?",
    ),
    _entry(
        "halden-crater",
        """Halden crater on the Moon is 23 kilometres across and unusually young, perhaps only
        80 million years old, so its bright rays of thrown-out rock still stretch for hundreds
        of kilometres. It was named after the lens grinder Petra Halden, who built some of the
        first large telescopes in the north.""",
        keyed="Who was Petra Halden?",
        ordinary="How old is the young crater with bright rays on the Moon?",
    ),
    # -- places -------------------------------------------------------------------------------
    _entry(
        "ninefold-stair",
        """The Ninefold Stair at Kaldera is a flight of 900 steps cut into the rock face,
        leading from the river to a monastery on the cliff top. The steps are divided into nine
        flights of a hundred, each ending at a small shrine where pilgrims rest. The climb takes
        about two hours.""",
        ordinary="How many steps lead up to the monastery on the cliff?",
        paraphrase="How long does it take to walk up to the religious house above the gorge?",
    ),
    _entry(
        "brightwater-fen",
        """In the village of Brightwater Fen every house stands on wooden stilts two metres
        high, because the marsh floods each spring. Villagers move between houses along raised
        boardwalks and keep flat-bottomed punts tied to their front steps. The stilts are made
        of oak and are replaced about every forty years.""",
        paraphrase="Where do people live in homes lifted on poles above the wetlands?",
        keyed="What wood is used at Brightwater Fen?",
    ),
    _entry(
        "island-of-skarra",
        """The island of Skarra has no roads and no cars; goods are carried from the harbour on
        hand carts and by a single tractor owned by the island council. About 140 people live
        there year-round, most of them fishing for lobster. A ferry calls twice a week, weather
        permitting.""",
        keyed="How often does the ferry call at Skarra?",
        paraphrase="Which place has no automobiles and moves freight by pushing barrows?",
    ),
    _entry(
        "cavern-of-voices",
        """The Cavern of Voices near Lorsk is a limestone cave whose main chamber produces an
        echo that repeats a spoken word seven times. Guided tours end with the guide singing a
        single note, which seems to come back as a chord. The cave is closed from November to
        March so that hibernating bats are not disturbed.""",
        ordinary="When is the cave with the echo closed to visitors?",
        paraphrase="Which underground hall makes one sung tone sound like several at once?",
    ),
)

DOCUMENTS: tuple[Document, ...] = tuple(entry.document for entry in _ENTRIES)
QUESTIONS: tuple[Question, ...] = tuple(q for entry in _ENTRIES for q in entry.questions)
