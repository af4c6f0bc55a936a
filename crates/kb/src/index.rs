//! The tantivy index of a set of documents: BM25 over a title, tags and whole-article field per
//! language, each analysed by that language's tokenizer, lowercaser, stop words and Snowball
//! stemmer.
//!
//! Customer text never reaches tantivy's query parser: the question is cut to
//! [`MAX_QUERY_CHARS`], run through the same analyser as the articles, and the first
//! [`MAX_QUERY_TOKENS`] distinct terms become term queries, so `"`, `:`, `(` or `-` are just
//! characters and anonymous input costs bounded CPU.

use tantivy::query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions, Value};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, TantivyDocument, Term, collector::TopDocs};

use crate::Lang;
use crate::parse::Doc;

/// Questions are cut to this many characters before analysis.
pub const MAX_QUERY_CHARS: usize = 1_000;
/// At most this many distinct terms of a question are searched.
pub const MAX_QUERY_TOKENS: usize = 64;
/// Weight of the title field. The body field holds the title and tags as well (so a word's
/// rarity is judged across whole articles: "order" in one title is not a rare word), so a title
/// word scores in both, about 2.5 times a body word. Measured on the evaluation set against
/// 2.5 on the body alone (+4.6 points of precision@1; `docs/kb.md`).
pub const TITLE_BOOST: f32 = 1.5;
/// Weight of the tags field (tags also count in the body field).
pub const TAGS_BOOST: f32 = 1.0;
/// Weight of a term within edit distance 1 of a question's word that no article contains
/// as written (a typo), against an exact match.
pub const FUZZY_BOOST: f32 = 0.5;
/// Words shorter than this are not corrected for typos (too many neighbours).
pub const FUZZY_MIN_CHARS: usize = 5;

/// English words that carry no topic in a customer's question, beyond Lucene's list.
const EN_STOP: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
    "i", "me", "my", "we", "our", "you", "your", "he", "she", "him", "her", "its", "them", "do", "does", "did", "done",
    "have", "has", "had", "can", "could", "would", "should", "shall", "may", "might", "must", "am", "been", "being",
    "what", "when", "where", "why", "how", "which", "who", "whom", "so", "too", "very", "just", "please", "pls", "plz",
    "hi", "hello", "hey", "thanks", "thank", "help", "need", "want", "get", "got", "im", "dont", "cant", "doesnt",
    "didnt", "isnt", "wont", "there", "here", "any", "some", "all", "from", "up", "out", "about", "still", "yet",
    "also", "again", "now", "one", "there's", "i'm", "don't", "can't", "doesn't", "didn't", "isn't", "won't", "guys",
];

/// Russian greetings and fillers beyond the Snowball stop list.
const RU_STOP_EXTRA: &[&str] = &[
    "здравствуйте",
    "привет",
    "добрый",
    "день",
    "вечер",
    "пожалуйста",
    "спасибо",
    "подскажите",
    "скажите",
    "помогите",
    "можно",
    "нужно",
    "хочу",
    "могу",
    "почему",
    "что",
    "как",
    "где",
    "когда",
    "мне",
    "меня",
    "мой",
    "моя",
    "мое",
    "моё",
    "мои",
    "вы",
    "вас",
    "ваш",
    "ваши",
    "это",
    "этот",
    "эта",
    "уже",
    "еще",
    "ещё",
    "все",
    "всё",
    "ли",
    "а",
    "и",
    "или",
    "но",
    "не",
    "ни",
    "у",
    "в",
    "на",
    "с",
    "по",
    "за",
    "к",
    "о",
    "об",
    "до",
    "от",
    "из",
    "же",
];

fn analyzer(lang: Lang) -> TextAnalyzer {
    let (language, stop): (Language, Vec<String>) = match lang {
        Lang::En => (Language::English, EN_STOP.iter().map(|w| w.to_string()).collect()),
        Lang::Ru => (Language::Russian, RU_STOP.iter().chain(RU_STOP_EXTRA).map(|w| w.to_string()).collect()),
    };
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(stop))
        .filter(Stemmer::new(language))
        .build()
}

/// Snowball's Russian stop words, without "нет": "no" matters in "no confirmation email".
const RU_STOP: &[&str] = &[
    "и",
    "в",
    "во",
    "не",
    "что",
    "он",
    "на",
    "я",
    "с",
    "со",
    "как",
    "а",
    "то",
    "все",
    "она",
    "так",
    "его",
    "но",
    "да",
    "ты",
    "к",
    "у",
    "же",
    "вы",
    "за",
    "бы",
    "по",
    "только",
    "ее",
    "мне",
    "было",
    "вот",
    "от",
    "меня",
    "еще",
    "о",
    "из",
    "ему",
    "теперь",
    "когда",
    "даже",
    "ну",
    "вдруг",
    "ли",
    "если",
    "уже",
    "или",
    "ни",
    "быть",
    "был",
    "него",
    "до",
    "вас",
    "нибудь",
    "опять",
    "уж",
    "вам",
    "ведь",
    "там",
    "потом",
    "себя",
    "ничего",
    "ей",
    "может",
    "они",
    "тут",
    "где",
    "есть",
    "надо",
    "ней",
    "для",
    "мы",
    "тебя",
    "их",
    "чем",
    "была",
    "сам",
    "чтоб",
    "без",
    "будто",
    "чего",
    "раз",
    "тоже",
    "себе",
    "под",
    "будет",
    "ж",
    "тогда",
    "кто",
    "этот",
    "того",
    "потому",
    "этого",
    "какой",
    "совсем",
    "ним",
    "здесь",
    "этом",
    "один",
    "почти",
    "мой",
    "тем",
    "чтобы",
    "нее",
    "сейчас",
    "были",
    "куда",
    "зачем",
    "всех",
    "никогда",
    "можно",
    "при",
    "наконец",
    "два",
    "об",
    "другой",
    "хоть",
    "после",
    "над",
    "больше",
    "тот",
    "через",
    "эти",
    "нас",
    "про",
    "всего",
    "них",
    "какая",
    "много",
    "разве",
    "три",
    "эту",
    "моя",
    "впрочем",
    "хорошо",
    "свою",
    "этой",
    "перед",
    "иногда",
    "лучше",
    "чуть",
    "том",
    "нельзя",
    "такой",
    "им",
    "более",
    "всегда",
    "конечно",
    "всю",
    "между",
];

/// The fields of one language.
#[derive(Clone, Copy)]
struct LangFields {
    title: Field,
    tags: Field,
    body: Field,
}

/// An in-RAM index over some documents (the articles, or the saved replies).
pub struct DocIndex {
    reader: IndexReader,
    ordinal: Field,
    en: LangFields,
    ru: LangFields,
}

fn tokenizer_name(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "kb_en",
        Lang::Ru => "kb_ru",
    }
}

impl DocIndex {
    /// Indexes `docs`; a hit's ordinal is the document's position in `docs`.
    pub fn build(docs: &[&Doc]) -> tantivy::Result<DocIndex> {
        let mut schema = Schema::builder();
        let ordinal = schema.add_u64_field("ordinal", INDEXED | STORED);
        let mut fields = |lang: Lang| {
            let options = TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(tokenizer_name(lang))
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            );
            let suffix = lang.code();
            LangFields {
                title: schema.add_text_field(&format!("title_{suffix}"), options.clone()),
                tags: schema.add_text_field(&format!("tags_{suffix}"), options.clone()),
                body: schema.add_text_field(&format!("body_{suffix}"), options),
            }
        };
        let (en, ru) = (fields(Lang::En), fields(Lang::Ru));
        let index = Index::create_in_ram(schema.build());
        for lang in [Lang::En, Lang::Ru] {
            index.tokenizers().register(tokenizer_name(lang), analyzer(lang));
        }
        // One thread: the articles are few, and doc ids then follow insertion order.
        let mut writer = index.writer_with_num_threads(1, 15_000_000)?;
        for (i, doc) in docs.iter().enumerate() {
            let f = if doc.language == Lang::En { en } else { ru };
            let mut d = TantivyDocument::default();
            d.add_u64(ordinal, i as u64);
            d.add_text(f.title, &doc.title);
            d.add_text(f.tags, doc.tags.join(" "));
            // The body field holds the title and tags too, so a word's weight there follows
            // how rare it is across whole articles, not only across titles.
            d.add_text(f.body, format!("{}\n{}\n{}", doc.title, doc.tags.join(" "), doc.text));
            writer.add_document(d)?;
        }
        writer.commit()?;
        let reader = index.reader()?;
        Ok(DocIndex { reader, ordinal, en, ru })
    }

    /// The question's analysed terms (distinct, at most [`MAX_QUERY_TOKENS`]).
    pub fn terms(&self, question: &str, lang: Lang) -> Vec<String> {
        let cut = match question.char_indices().nth(MAX_QUERY_CHARS) {
            Some((end, _)) => &question[..end],
            None => question,
        };
        let mut analyzer = analyzer(lang);
        let mut stream = analyzer.token_stream(cut);
        let mut terms: Vec<String> = Vec::new();
        while terms.len() < MAX_QUERY_TOKENS && stream.advance() {
            let text = &stream.token().text;
            if !terms.iter().any(|t| t == text) {
                terms.push(text.clone());
            }
        }
        terms
    }

    /// Documents matching the question's terms in `lang`'s fields, best first, as (ordinal,
    /// BM25 score). `fuzzy` adds typo-tolerant terms for words no document contains.
    pub fn search(&self, question: &str, lang: Lang, limit: usize, fuzzy: bool) -> tantivy::Result<Vec<(usize, f32)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let f = if lang == Lang::En { self.en } else { self.ru };
        let searcher = self.reader.searcher();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for text in self.terms(question, lang) {
            let mut known = false;
            for (field, boost) in [(f.title, TITLE_BOOST), (f.tags, TAGS_BOOST), (f.body, 1.0)] {
                let term = Term::from_field_text(field, &text);
                known |= searcher.doc_freq(&term)? > 0;
                let query = TermQuery::new(term, IndexRecordOption::WithFreqs);
                clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(query), boost))));
            }
            if fuzzy && !known && text.chars().count() >= FUZZY_MIN_CHARS {
                for (field, boost) in [(f.title, TITLE_BOOST), (f.body, 1.0)] {
                    let query = FuzzyTermQuery::new(Term::from_field_text(field, &text), 1, true);
                    clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(query), boost * FUZZY_BOOST))));
                }
            }
        }
        if clauses.is_empty() {
            return Ok(Vec::new());
        }
        let top = searcher.search(&BooleanQuery::new(clauses), &TopDocs::with_limit(limit).order_by_score())?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(n) = doc.get_first(self.ordinal).and_then(|v| v.as_u64()) {
                hits.push((n as usize, score));
            }
        }
        Ok(hits)
    }
}
