use super::*;

fn nanos(text: &str) -> i128 {
    text.parse::<Quantity>()
        .unwrap_or_else(|err| panic!("{text}: {err}"))
        .nanos()
}

fn q(text: &str) -> Quantity {
    text.parse().unwrap_or_else(|err| panic!("{text}: {err}"))
}

#[test]
fn plain_numbers_and_decimal_suffixes_scale_by_powers_of_ten() {
    assert_eq!(nanos("0"), 0);
    assert_eq!(nanos("1"), 1_000_000_000);
    assert_eq!(nanos("16"), 16_000_000_000);
    assert_eq!(nanos("1n"), 1);
    assert_eq!(nanos("1u"), 1_000);
    assert_eq!(nanos("500m"), 500_000_000);
    assert_eq!(nanos("1k"), 1_000_000_000_000);
    assert_eq!(q("1M"), q("1000k"));
    assert_eq!(q("1G"), q("1000M"));
    assert_eq!(q("1T"), q("1000G"));
    assert_eq!(q("1P"), q("1000T"));
    assert_eq!(q("1E"), q("1000P"));
}

#[test]
fn binary_suffixes_scale_by_powers_of_two() {
    assert_eq!(q("1Ki").whole_units(), Some(1024));
    assert_eq!(q("1Mi").whole_units(), Some(1 << 20));
    assert_eq!(q("64Gi").whole_units(), Some(64 << 30));
    assert_eq!(q("1Ti"), q("1024Gi"));
    assert_eq!(q("1Pi"), q("1024Ti"));
    assert_eq!(q("1Ei"), q("1024Pi"));
    assert_eq!(q("1.5Gi"), q("1536Mi"));
    assert!(q("1Gi") > q("1G"), "1Gi is 2^30, 1G is 10^9");
}

#[test]
fn exponents_fractions_and_signs_are_read_exactly() {
    assert_eq!(q("1e3"), q("1k"));
    assert_eq!(q("1E3"), q("1000"));
    assert_eq!(q("1e+3"), q("1k"));
    assert_eq!(q("5e-1"), q("500m"));
    assert_eq!(q("0.5"), q("500m"));
    assert_eq!(q(".5"), q("500m"));
    assert_eq!(q("2."), q("2"));
    assert_eq!(q("0.100"), q("100m"));
    assert_eq!(q("+3"), q("3"));
    assert_eq!(q("-3").nanos(), -3_000_000_000);
    assert!(q("-1m").is_negative());
    assert_eq!(q("007"), q("7"));
    assert_eq!(q("0.0000000000000000000000000000000000000000001"), q("1n"));
}

#[test]
fn precision_finer_than_a_billionth_rounds_up() {
    assert_eq!(nanos("0.1n"), 1);
    assert_eq!(nanos("1.0000000001"), 1_000_000_001);
    assert_eq!(nanos("1e-100"), 1);
}

#[test]
fn comparisons_are_exact_across_suffixes() {
    assert_eq!(q("17179869184"), q("16Gi"));
    assert!(q("17179869185") > q("16Gi"));
    assert!(q("16000m") == q("16"));
    assert!(q("16001m") > q("16"));
    assert!(q("100Ti") > q("16Gi"));
    assert!(q("999999999n") < q("1"));
}

#[test]
fn what_is_not_a_quantity_says_why() {
    use QuantityError::*;
    let err = |text: &str| text.parse::<Quantity>().unwrap_err();
    assert_eq!(err(""), Empty);
    assert_eq!(err("abc"), NoNumber);
    assert_eq!(err("-"), NoNumber);
    assert_eq!(err("."), NoNumber);
    assert_eq!(err("1.2.3"), NoNumber);
    assert_eq!(err(" 1"), NoNumber);
    assert_eq!(err("+-1"), NoNumber);
    assert_eq!(err("1 "), Suffix(" ".into()));
    assert_eq!(err("1KB"), Suffix("KB".into()));
    assert_eq!(err("1ki"), Suffix("ki".into()));
    assert_eq!(err("1K"), Suffix("K".into()));
    assert_eq!(err("1e"), Suffix("e".into()));
    assert_eq!(err("1e1.5"), Suffix("e1.5".into()));
    assert_eq!(err("1Gi1"), Suffix("Gi1".into()));
    assert!(err("abc").to_string().contains("number"));
    assert!(err("1KB").to_string().contains("`KB`"));
}

#[test]
fn values_beyond_what_kubernetes_holds_are_refused() {
    use QuantityError::TooLarge;
    let err = |text: &str| text.parse::<Quantity>().unwrap_err();
    assert_eq!(
        q("9223372036854775807").whole_units(),
        Some(i64::MAX.into())
    );
    assert_eq!(err("9223372036854775808"), TooLarge);
    assert_eq!(err("8Ei"), TooLarge);
    assert_eq!(q("7Ei").whole_units(), Some(7 << 60));
    assert_eq!(err("1e19"), TooLarge);
    assert_eq!(err("1e100000"), TooLarge);
    assert_eq!(err(&"9".repeat(40)), TooLarge);
    assert_eq!(err("1e99999999999999999999999"), TooLarge);
    assert_eq!(q("0e100000"), Quantity::ZERO);
    assert_eq!(q("1e-99999999999999999999999").nanos(), 1);
}

#[test]
fn whole_units_millicores_and_floats_are_derived_exactly() {
    assert!(q("500m").is_whole_milli());
    assert!(!q("0.5m").is_whole_milli());
    assert_eq!(q("500m").whole_units(), None);
    assert_eq!(q("4G").whole_units(), Some(4_000_000_000));
    assert_eq!(q("500m").as_f64(), 0.5);
    assert_eq!(q("100m").as_f64(), 0.1);
    assert_eq!(q("16").as_f64(), 16.0);
    let number = serde_json::Number::from_f64(0.25).unwrap();
    assert_eq!(Quantity::from_number(&number).unwrap(), q("250m"));
    assert_eq!(
        Quantity::from_number(&serde_json::Number::from(30)).unwrap(),
        q("30")
    );
}

#[test]
fn quantities_display_as_plain_decimals() {
    assert_eq!(q("500m").to_string(), "0.5");
    assert_eq!(q("16Gi").to_string(), "17179869184");
    assert_eq!(q("-1n").to_string(), "-0.000000001");
    assert_eq!(q("0").to_string(), "0");
}

#[test]
fn the_schema_pattern_accepts_exactly_what_the_parser_accepts() {
    let pattern = regex::Regex::new(QUANTITY_PATTERN).unwrap();
    for text in [
        "0", "1", "500m", "1.5Gi", ".5", "2.", "+3", "-3", "1e3", "1E-3", "1E", "7Ei", "1n", "1u",
        "abc", "", "1KB", "1ki", "1e", "1e1.5", "1.2.3", " 1", "1 ", "+-1", "Gi", "1Gi1",
    ] {
        // Too large is a range error, not a syntax error: the pattern takes it.
        let parses = !matches!(
            text.parse::<Quantity>(),
            Err(QuantityError::Empty | QuantityError::NoNumber | QuantityError::Suffix(_))
        );
        assert_eq!(pattern.is_match(text), parses, "{text:?}");
    }
}
