//! The rules a parameter's declaration must satisfy, checked when a template
//! is loaded, and whether it bounds what a requester may set.

use super::{Bound, ParameterSpec, ParameterType};
use crate::workflow::quantity::Quantity;

/// Patterns larger than this once compiled are refused (a template is
/// trusted, but a pattern is matched on every request).
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// `pattern` compiled, within the size limit.
pub(super) fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|err| format!("pattern `{pattern}` is not a regular expression: {err}"))
}

impl ParameterSpec {
    /// Checks the declaration itself: each rule fits the type, bounds are in
    /// order, an operator-only parameter has a default, and a default
    /// satisfies its own rules.
    pub(crate) fn check(&self, place: &str) -> Result<(), String> {
        let kind = self.kind;
        let numeric = matches!(kind, ParameterType::Integer | ParameterType::Number);
        let texts = matches!(kind, ParameterType::String | ParameterType::Strings);
        let misplaced = [
            (
                "minimum",
                self.minimum.is_some() && !numeric && kind != ParameterType::Quantity,
            ),
            (
                "maximum",
                self.maximum.is_some() && !numeric && kind != ParameterType::Quantity,
            ),
            (
                "kind",
                self.measures.is_some() && kind != ParameterType::Quantity,
            ),
            ("max_length", self.max_length.is_some() && !texts),
            ("pattern", self.pattern.is_some() && !texts),
            (
                "max_items",
                self.max_items.is_some() && kind != ParameterType::Strings,
            ),
        ];
        if let Some((field, _)) = misplaced.iter().find(|(_, wrong)| *wrong) {
            return Err(format!(
                "`{field}` does not apply to a parameter of type {}",
                type_name(kind)
            ));
        }
        if numeric {
            for (field, bound) in [("minimum", &self.minimum), ("maximum", &self.maximum)] {
                if let Some(Bound::Text(text)) = bound {
                    return Err(format!("{field} `{text}` must be a number"));
                }
            }
            if let (Some(min), Some(max)) = (self.min_number(), self.max_number())
                && min > max
            {
                return Err(format!("minimum {min} is above maximum {max}"));
            }
        }
        if kind == ParameterType::Quantity {
            let min = self.quantity_bound("minimum", self.minimum.as_ref())?;
            let max = self.quantity_bound("maximum", self.maximum.as_ref())?;
            if let (Some(min), Some(max)) = (min, max)
                && min > max
            {
                return Err(format!(
                    "minimum {} is above maximum {}",
                    self.minimum
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    self.maximum
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ));
            }
        }
        if let Some(pattern) = &self.pattern {
            if !pattern.starts_with('^') || !pattern.ends_with('$') {
                return Err(format!(
                    "pattern `{pattern}` must be anchored with `^` and `$`, so it bounds the whole value"
                ));
            }
            compile(pattern)?;
        }
        if !self.settable && self.default.is_none() {
            return Err(
                "an operator-only parameter (`settable: false`) needs a default: it is the only value it takes"
                    .to_owned(),
            );
        }
        if let Some(default) = &self.default {
            self.accept(default).map_err(|rule| {
                format!("default {default} breaks the parameter's own rule: {rule} ({place})")
            })?;
        }
        Ok(())
    }

    /// `Some(what is missing)` when a requester may set this parameter to
    /// values without a bound.
    pub fn unbounded(&self) -> Option<&'static str> {
        if !self.settable || self.one_of.is_some() {
            return None;
        }
        let text_bound = self.max_length.is_some() || self.pattern.is_some();
        match self.kind {
            ParameterType::Boolean => None,
            ParameterType::Integer | ParameterType::Number
                if self.minimum.is_none() || self.maximum.is_none() =>
            {
                Some("a number a request may set needs a minimum and a maximum (or an enum)")
            }
            ParameterType::Quantity if self.maximum.is_none() => {
                Some("a quantity a request may set needs a maximum (or an enum)")
            }
            ParameterType::String if !text_bound => {
                Some("a string a request may set needs a max_length or a pattern (or an enum)")
            }
            ParameterType::Strings if self.max_items.is_none() || !text_bound => Some(
                "a list a request may set needs max_items, and a max_length or a pattern for its strings",
            ),
            _ => None,
        }
    }

    pub(super) fn min_number(&self) -> Option<f64> {
        self.minimum.as_ref().and_then(Bound::as_number)
    }

    pub(super) fn max_number(&self) -> Option<f64> {
        self.maximum.as_ref().and_then(Bound::as_number)
    }

    /// A quantity bound, checked like a value of this parameter.
    fn quantity_bound(
        &self,
        field: &str,
        bound: Option<&Bound>,
    ) -> Result<Option<Quantity>, String> {
        let Some(bound) = bound else {
            return Ok(None);
        };
        let quantity = bound
            .quantity()
            .map_err(|err| format!("{field} `{bound}` is not a Kubernetes quantity: {err}"))?;
        if quantity.is_negative() {
            return Err(format!("{field} `{bound}` must not be negative"));
        }
        if let Some(unit) = self.unit_rule(quantity) {
            return Err(format!("{field} `{bound}` must be {unit}"));
        }
        Ok(Some(quantity))
    }
}

/// A type as templates write it.
pub(super) fn type_name(kind: ParameterType) -> &'static str {
    match kind {
        ParameterType::String => "string",
        ParameterType::Integer => "integer",
        ParameterType::Number => "number",
        ParameterType::Boolean => "boolean",
        ParameterType::Strings => "strings",
        ParameterType::Quantity => "quantity",
    }
}
