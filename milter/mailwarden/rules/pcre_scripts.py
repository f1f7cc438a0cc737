"""The Unicode 14 script names PCRE2 10.42 knows for \\p{..}, long and short, compared loosely
(lower case, without spaces, underscores and hyphens).

Generated with Perl's Unicode::UCD (Unicode 14.0, PCRE2 10.42's version): every alias of every
script, plus Unknown/Zzzz. Only Latin and Common have code points below 256, so in Postfix's 8-bit
non-UTF mode every other script matches nothing; tests/rules/test_pcre2.py checks each name with
libpcre2.
"""

_NAMES = """
    adlam adlm aghb ahom anatolianhieroglyphs arab arabic armenian armi armn avestan avst bali
    balinese bamu bamum bass bassavah batak batk beng bengali bhaiksuki bhks bopo bopomofo brah
    brahmi brai braille bugi buginese buhd buhid cakm canadianaboriginal cans cari carian
    caucasianalbanian chakma cham cher cherokee chorasmian chrs common copt coptic cpmn cprt
    cuneiform cypriot cyprominoan cyrillic cyrl deseret deva devanagari diak divesakuru dogr
    dogra dsrt dupl duployan egyp egyptianhieroglyphs elba elbasan elym elymaic ethi ethiopic
    geor georgian glag glagolitic gong gonm goth gothic gran grantha greek grek gujarati gujr
    gunjalagondi gurmukhi guru han hang hangul hani hanifirohingya hano hanunoo hatr hatran hebr
    hebrew hira hiragana hluw hmng hmnp hung imperialaramaic inherited inscriptionalpahlavi
    inscriptionalparthian ital java javanese kaithi kali kana kannada katakana kayahli khar
    kharoshthi khitansmallscript khmer khmr khoj khojki khudawadi kits knda kthi lana lao laoo
    latin latn lepc lepcha limb limbu lina linb lineara linearb lisu lyci lycian lydi lydian
    mahajani mahj maka makasar malayalam mand mandaic mani manichaean marc marchen masaramgondi
    medefaidrin medf meeteimayek mend mendekikakui merc mero meroiticcursive meroitichieroglyphs
    miao mlym modi mong mongolian mro mroo mtei mult multani myanmar mymr nabataean nand
    nandinagari narb nbat newa newtailue nko nkoo nshu nushu nyiakengpuachuehmong ogam ogham
    olchiki olck oldhungarian olditalic oldnortharabian oldpermic oldpersian oldsogdian
    oldsoutharabian oldturkic olduyghur oriya orkh orya osage osge osma osmanya ougr pahawhhmong
    palm palmyrene pauc paucinhau perm phag phagspa phli phlp phnx phoenician plrd prti
    psalterpahlavi qaac qaai rejang rjng rohg runic runr samaritan samr sarb saur saurashtra
    sgnw sharada shavian shaw shrd sidd siddham signwriting sind sinh sinhala sogd sogdian sogo
    sora sorasompeng soyo soyombo sund sundanese sylo sylotinagri syrc syriac tagalog tagb
    tagbanwa taile taitham taiviet takr takri tale talu tamil taml tang tangsa tangut tavt telu
    telugu tfng tglg thaa thaana thai tibetan tibt tifinagh tirh tirhuta tnsa toto ugar ugaritic
    unknown vai vaii vith vithkuqi wancho wara warangciti wcho xpeo xsux yezi yezidi yi yiii
    zanabazarsquare zanb zinh zyyy zzzz
"""
SCRIPTS = frozenset(_NAMES.split())
