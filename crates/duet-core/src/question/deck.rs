//! The question deck: written for duet, in our own words.
//!
//! Ids are recorded in answers: never renumber, reuse or delete one. Add new questions at the
//! end of their category with the next free number. Changing the deck also changes which
//! question a couple gets on a given day, so partners should run the same deck version.
//!
//! Depth: 1 gentle, 2 personal, 3 deep. `light` is always 1 and `hard` always 3.

use super::{Category, Question};

/// `Category { "id" depth "text" ... }`: one question per row, long texts continued with `\`.
macro_rules! deck {
    ($($category:ident { $($id:literal $depth:literal $text:literal)* })*) => {
        &[$($(Question {
            id: $id,
            text: $text,
            category: Category::$category,
            depth: $depth,
        },)*)*]
    };
}

pub(super) const DECK: &[Question] = deck! {
    Light {
        "light-01" 1 "If we had a free Saturday with no plans and no phones, how would you want \
            to spend it?"
        "light-02" 1 "What food could you happily eat three days in a row, and would you share it \
            with me?"
        "light-03" 1 "Which fictional couple do you think we resemble most, and why that one?"
        "light-04" 1 "If our home had a name painted over the door, what should it be?"
        "light-05" 1 "What is the most useless skill you have that you are quietly proud of?"
        "light-06" 1 "Which song would you pick to play whenever one of us walks into a room?"
        "light-07" 1 "If we opened a tiny shop together, what would we sell and who would run the \
            till?"
        "light-08" 1 "What is a word or phrase you have picked up from me without meaning to?"
        "light-09" 1 "If you could be any animal for one afternoon, which one would you be and \
            what would you do?"
        "light-10" 1 "Describe the best thing you ate this week, and where you were when you ate \
            it."
        "light-11" 1 "Which ordinary chore would you turn into an Olympic sport, and which of us \
            would win gold?"
        "light-12" 1 "If we could teleport somewhere for dinner tonight and be home by ten, where \
            would we go?"
        "light-13" 1 "What smell instantly puts you in a good mood?"
        "light-14" 1 "What would be the title of a documentary about our daily routine?"
        "light-15" 1 "What is the most ridiculous thing you have ever bought, and do you regret \
            it?"
        "light-16" 1 "If you had to teach a one-hour class on anything tomorrow, what would the \
            topic be?"
        "light-17" 1 "Which game or sport brings out your competitive side the most?"
        "light-18" 1 "What did you want to be when you were seven, and how much of that kid is \
            still in you?"
        "light-19" 1 "If we had a pet that could talk, what do you think it would complain about \
            first?"
        "light-20" 1 "What small luxury would you buy without any guilt if money were no object \
            for a day?"
        "light-21" 1 "Which season do you think suits us best as a couple, and why?"
        "light-22" 1 "What is the strangest dream you remember having lately?"
        "light-23" 1 "If you could master one instrument overnight, which would you pick and what \
            would you play for me?"
        "light-24" 1 "What is your ideal lazy breakfast, down to the drink?"
        "light-25" 1 "What made you laugh out loud recently, even if only for a second?"
        "light-26" 1 "If our relationship had a mascot, what creature would it be?"
        "light-27" 1 "Which made-up holiday should we celebrate every year, and how?"
        "light-28" 1 "What is a movie you could watch again tonight without getting bored?"
        "light-29" 1 "If you could add one room to our home, no matter how impractical, what \
            would it be?"
        "light-30" 1 "What is the best wrong turn you have ever taken on a trip?"
        "light-31" 1 "Which of your friends would be the best company on a long road trip with us?"
        "light-32" 1 "If you could rename one day of the week, what would you call it and why?"
    }
    Memories {
        "memories-01" 1 "What do you remember about the first time we spoke, and what did you \
            think of me?"
        "memories-02" 1 "What is a trip we took that you still think about, and which moment \
            stands out?"
        "memories-03" 1 "What did your bedroom look like as a teenager, and what was on the walls?"
        "memories-04" 1 "Which meal we shared would you most like to eat again, exactly as it was?"
        "memories-05" 2 "What is a moment from your childhood that explains something about who \
            you are today?"
        "memories-06" 1 "What is a time I surprised you, for better or worse?"
        "memories-07" 3 "Think of a hard stretch we went through together: what helped us get to \
            the other side?"
        "memories-08" 1 "What song takes you straight back to an early moment of us?"
        "memories-09" 2 "Which grandparent or older relative do you think about most, and what \
            did they teach you?"
        "memories-10" 1 "What is the kindest thing a stranger ever did for you?"
        "memories-11" 1 "What smell, taste or sound brings back one specific moment of your life?"
        "memories-12" 1 "What was the first thing you noticed about how I live: my habits, my \
            place, my mornings?"
        "memories-13" 2 "What is an argument of ours that you now remember with a smile?"
        "memories-14" 1 "What did a typical Sunday look like in the house you grew up in?"
        "memories-15" 1 "Which photo of us would you save first, and what was happening just \
            outside the frame?"
        "memories-16" 2 "When did you realize this relationship was going to matter a lot to you?"
        "memories-17" 3 "What is something from your past you rarely talk about but would like me \
            to know?"
        "memories-18" 1 "What was the best gift you ever received, and what made it so good?"
        "memories-19" 2 "Which teacher, coach or mentor shaped you, and how?"
        "memories-20" 2 "When did you feel that I understood you without you having to explain?"
        "memories-21" 2 "Which tradition from your family do you want to keep, and which are you \
            glad to leave behind?"
        "memories-22" 1 "Describe an ordinary day with me that stuck with you for no particular \
            reason."
        "memories-23" 2 "When was the last time you felt completely carefree, and where were you?"
        "memories-24" 3 "What is a memory of us that we each remember differently, and what do \
            you think really happened?"
        "memories-25" 1 "What place from your past would you love to show me in person?"
        "memories-26" 3 "How did the way your parents treated each other shape what you expect \
            from us?"
        "memories-27" 2 "What is the bravest thing you have ever done?"
        "memories-28" 1 "Which of our early dates felt most like us, looking back?"
        "memories-29" 2 "What did you believe about love at twenty that you no longer believe?"
        "memories-30" 3 "What loss still shapes you, and how does it show up in our life now?"
        "memories-31" 2 "What is a moment from the past year when you felt especially close to me?"
        "memories-32" 2 "Which friendship from your past do you miss, and what made it special?"
    }
    Dreams {
        "dreams-01" 2 "Where would you like us to be living in ten years, and what does a normal \
            evening look like there?"
        "dreams-02" 1 "What is one small adventure we could plan for next month?"
        "dreams-03" 1 "If we took a whole year off, how would you want to spend it?"
        "dreams-04" 1 "What is something you want to learn in the next few years, just for \
            yourself?"
        "dreams-05" 3 "What does a good old age look like to you, with me in it?"
        "dreams-06" 3 "Which dream did you put aside along the way, and is any part of it still \
            alive?"
        "dreams-07" 1 "How would you like our home to feel to friends who come to visit?"
        "dreams-08" 1 "What tradition would you like us to start this year?"
        "dreams-09" 1 "Where do you want us to go together while we can still walk all day?"
        "dreams-10" 2 "How would you like your work to look in five years, and how can I help?"
        "dreams-11" 2 "What would you like us to do more of for other people, as a couple?"
        "dreams-12" 2 "If money were not a worry, what would you stop doing tomorrow?"
        "dreams-13" 1 "Dream up a project we could build or make together with our hands."
        "dreams-14" 3 "What fear keeps you from a plan you care about?"
        "dreams-15" 2 "What would a perfect ordinary week look like for us a year from now?"
        "dreams-16" 1 "Which skill would you love us to learn side by side?"
        "dreams-17" 2 "What kind of community do you want around us as we get older?"
        "dreams-18" 1 "What is a habit you would like to have built by this time next year?"
        "dreams-19" 2 "What part of your life do you want to simplify, and what would you do with \
            the space?"
        "dreams-20" 1 "How do you picture our mornings when neither of us has to rush?"
        "dreams-21" 3 "What legacy, big or small, would you like to leave behind?"
        "dreams-22" 3 "What risk would you take if you knew I had your back no matter how it \
            turned out?"
        "dreams-23" 2 "Which of my dreams would you most like to see come true, and how could we \
            make room for it?"
        "dreams-24" 1 "Which place would you like us to return to every few years?"
        "dreams-25" 2 "What would you like our next anniversary to feel like, not just look like?"
        "dreams-26" 2 "If we designed the rhythm of our weekends from scratch, what would we keep \
            sacred?"
        "dreams-27" 2 "What is something you want to be braver about this year?"
        "dreams-28" 3 "What role do you hope family, whichever kind we choose, will play in our \
            future?"
        "dreams-29" 1 "What silly goal would you like to reach just for the fun of it?"
        "dreams-30" 1 "What would you like us to be celebrating a year from today?"
        "dreams-31" 2 "Where do you feel most like yourself, and how could we spend more time \
            there?"
        "dreams-32" 2 "What is a question about our future that you have been wanting to ask me?"
    }
    Feelings {
        "feelings-01" 2 "What has been taking up most of the room in your head this week?"
        "feelings-02" 2 "When did you last feel really seen by someone, and what did they do?"
        "feelings-03" 3 "What made you anxious lately that you have not mentioned to me?"
        "feelings-04" 2 "How do you know when you are running on empty, and what do you need then?"
        "feelings-05" 3 "What is a feeling you find hard to show me, and why?"
        "feelings-06" 1 "What lifted your mood today, even a little?"
        "feelings-07" 2 "When you are sad, do you want company, distraction or space, and how can \
            I tell which?"
        "feelings-08" 3 "What are you carrying right now that you would like to put down?"
        "feelings-09" 1 "Which part of your day drained you most, and which part gave energy back?"
        "feelings-10" 2 "What does it feel like in your body when things between us are good?"
        "feelings-11" 2 "What are you quietly proud of that nobody seems to have noticed?"
        "feelings-12" 3 "What would you tell your younger self about a feeling that overwhelmed \
            you back then?"
        "feelings-13" 3 "When did you last cry, and what was it about?"
        "feelings-14" 2 "What kind of touch comforts you most when you are stressed?"
        "feelings-15" 3 "Is there a worry about the future that you keep to yourself?"
        "feelings-16" 1 "What are you looking forward to this week, however small?"
        "feelings-17" 3 "What kind of loneliness do you know best, and what eases it?"
        "feelings-18" 2 "How does anger show up in your body, and what helps it settle?"
        "feelings-19" 3 "What do you feel guilty about that you would like to let go of?"
        "feelings-20" 2 "How did you surprise yourself with your own reaction to something \
            recently?"
        "feelings-21" 2 "How are you really doing, underneath the usual answer?"
        "feelings-22" 3 "What have you felt about us lately that you have not found words for yet?"
        "feelings-23" 2 "When do you feel most confident, and when does that confidence leave you?"
        "feelings-24" 3 "What helps you feel safe enough to be vulnerable with me?"
        "feelings-25" 3 "Which emotion did your family find hardest to handle, and how does that \
            echo in you?"
        "feelings-26" 2 "When someone criticizes you, what is the first thing you feel, before \
            you think?"
        "feelings-27" 1 "What have you been curious about lately?"
        "feelings-28" 3 "What are you afraid I might think if you told me how you really feel \
            about something?"
        "feelings-29" 2 "What small disappointment from this week still stings a little?"
        "feelings-30" 2 "What compliment do you find hard to accept, and why?"
        "feelings-31" 2 "Which of your emotions do you trust most, and which one tends to mislead \
            you?"
        "feelings-32" 3 "Where in your life do you feel stuck right now?"
    }
    Us {
        "us-01" 1 "What is one thing we do together that you would never want to lose?"
        "us-02" 2 "When do you feel most like a team with me?"
        "us-03" 1 "What small ritual could we add to our evenings?"
        "us-04" 1 "How do you like to be greeted when we see each other after a long day?"
        "us-05" 2 "What is something we used to do that you miss?"
        "us-06" 2 "When do we talk to each other at our best, and what is different about those \
            times?"
        "us-07" 2 "What is a way I show love that you did not notice at first?"
        "us-08" 2 "How do you prefer to make up after we disagree?"
        "us-09" 3 "What is one thing you wish we talked about more?"
        "us-10" 1 "What is our funniest inside joke, and how did it start?"
        "us-11" 2 "Where do you think we have grown the most as a couple?"
        "us-12" 3 "Is there a role you ended up with in our life together that you never really \
            chose?"
        "us-13" 2 "How much time alone do you need, and are you getting enough of it?"
        "us-14" 3 "What does intimacy mean to you beyond the physical?"
        "us-15" 1 "What date have we never been on that you would like to plan?"
        "us-16" 1 "What is one way I could make your mornings a little easier?"
        "us-17" 2 "When did we last really play together, without any purpose?"
        "us-18" 3 "What is something new you would like us to try together, in or out of the \
            bedroom?"
        "us-19" 3 "How do you feel about how we divide the work of running our home?"
        "us-20" 2 "What do you think other people misunderstand about us?"
        "us-21" 3 "How can I tell when you want closeness but are not asking for it?"
        "us-22" 2 "Which of our differences do you find more interesting than annoying?"
        "us-23" 2 "What phrase or gesture of mine reassures you instantly?"
        "us-24" 2 "How do you feel about the balance between your friends, my friends and our \
            friends?"
        "us-25" 1 "What place feels like ours, and what makes it so?"
        "us-26" 1 "What do you love about the way we spend quiet time together?"
        "us-27" 3 "How has the way you love me changed since the beginning?"
        "us-28" 2 "What is one promise you would like us to make to each other for this month?"
        "us-29" 3 "When do you feel closest to me physically, and when emotionally?"
        "us-30" 2 "What gets in the way of our time together most often, and is it worth it?"
        "us-31" 1 "What chore feels almost fun when we do it together?"
        "us-32" 1 "How would you like us to celebrate small wins?"
    }
    Appreciation {
        "appreciation-01" 1 "What did I do this week that made your day a bit easier?"
        "appreciation-02" 1 "Which quality of mine do you admire most right now?"
        "appreciation-03" 2 "How have I changed since we met in a way you are grateful for?"
        "appreciation-04" 1 "What compliment about me have you heard from someone else and agreed \
            with?"
        "appreciation-05" 1 "Which of my friends or family are you glad to have in your life?"
        "appreciation-06" 2 "What is something about my body or my face that you love and rarely \
            mention?"
        "appreciation-07" 2 "When did I make you feel proud to be with me?"
        "appreciation-08" 1 "What habit of mine makes our home better?"
        "appreciation-09" 2 "Which of your strengths do you think I appreciate most, and are you \
            right?"
        "appreciation-10" 1 "What is one thing about our life right now that you would not trade?"
        "appreciation-11" 2 "How have I supported a dream of yours, maybe without realizing it?"
        "appreciation-12" 1 "What small, everyday moment with me do you treasure most?"
        "appreciation-13" 1 "What is something I taught you, on purpose or by accident?"
        "appreciation-14" 1 "What part of my work or my passions do you find most impressive?"
        "appreciation-15" 2 "When have I been patient with you in a way that mattered?"
        "appreciation-16" 2 "What do you love about the way I get through hard days?"
        "appreciation-17" 2 "What do you appreciate about yourself in this relationship?"
        "appreciation-18" 1 "What meal, gift or gesture of mine do you still think about?"
        "appreciation-19" 1 "Name a moment from this month you are thankful for, and say why it \
            mattered."
        "appreciation-20" 2 "How have I helped you become more of who you want to be?"
        "appreciation-21" 2 "What would you want to thank my younger self for?"
        "appreciation-22" 2 "What about the way I care for others moves you?"
        "appreciation-23" 1 "What do you enjoy most about the way my mind works?"
        "appreciation-24" 1 "Which of my opinions or tastes has grown on you over time?"
        "appreciation-25" 1 "Which of my quirks would you miss most if it disappeared?"
        "appreciation-26" 2 "What is a sacrifice I made for us that you want me to know you saw?"
        "appreciation-27" 1 "What do you love about my laugh, or about what makes me laugh?"
        "appreciation-28" 2 "What about us are you grateful for now that you used to take for \
            granted?"
        "appreciation-29" 2 "When did I show up for you when you really needed it?"
        "appreciation-30" 2 "What decision of mine have you come to respect?"
        "appreciation-31" 1 "What did you notice about me today that made you smile?"
        "appreciation-32" 2 "Whose love in your life, besides mine, are you most grateful for \
            today?"
    }
    Hard {
        "hard-01" 3 "Is there something you have been avoiding telling me, and what would make it \
            easier to say?"
        "hard-02" 3 "When did you last feel distant from me, and what do you think caused it?"
        "hard-03" 3 "What pattern in our arguments would you most like us to break?"
        "hard-04" 3 "Is there a way I have hurt you that I may not know about?"
        "hard-05" 3 "What do you need from me that you are not getting right now?"
        "hard-06" 3 "What do you resent, even a little, that we should talk about before it grows?"
        "hard-07" 3 "When do you feel taken for granted?"
        "hard-08" 3 "What would you want me to do if you became seriously ill?"
        "hard-09" 3 "How do you feel about money between us: fair, tense, or just unspoken?"
        "hard-10" 3 "What fear about our future have you not said out loud?"
        "hard-11" 3 "Have our conversations shrunk to logistics, and what would bring the deeper \
            ones back?"
        "hard-12" 3 "What do I do when I am stressed that is hard for you?"
        "hard-13" 3 "Is there a promise, spoken or not, that you feel one of us has broken?"
        "hard-14" 3 "How do you feel about our physical intimacy lately, honestly?"
        "hard-15" 3 "How have you changed in a way you are not sure I have noticed or accepted?"
        "hard-16" 3 "If you imagine us slowly growing apart, what would it start with?"
        "hard-17" 3 "What apology do you think one of us still owes the other?"
        "hard-18" 3 "What boundary do you need me to respect more carefully?"
        "hard-19" 3 "How do you want us to handle it when one of our families causes friction?"
        "hard-20" 3 "What decision we made together do you now have doubts about?"
        "hard-21" 3 "When you feel jealous or insecure, what is usually underneath it?"
        "hard-22" 3 "What should we do if one of us stops feeling in love for a while?"
        "hard-23" 3 "What do you find hardest about living with me?"
        "hard-24" 3 "What kind of help would you accept if one of us were struggling with our \
            mental health?"
        "hard-25" 3 "Is there anything in your past that still affects how safe you feel with me?"
        "hard-26" 3 "What topic makes you tense up as soon as it comes up between us, and why?"
        "hard-27" 3 "How do you want to be treated when you have made a big mistake?"
        "hard-28" 3 "What do you want us to know about each other's wishes in case one of us dies \
            first?"
        "hard-29" 3 "Where do you feel we keep score, and how could we stop?"
        "hard-30" 3 "What would you change about how we make decisions together?"
        "hard-31" 3 "What criticism of me have you been holding back, and how would you like me \
            to hear it?"
        "hard-32" 3 "Tell me what you would want me to understand about you if we were ever at a \
            breaking point."
    }
};
