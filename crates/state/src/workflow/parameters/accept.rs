//! Whether a value fits a parameter's declaration, and the rule it breaks
//! when not, in words a requester can act on.

use serde_json::Value;

use super::declaration::compile;
use super::{ParameterSpec, ParameterType, QuantityKind};
use crate::workflow::quantity::Quantity;

impl ParameterSpec {
    /// `Ok` when `value` fits; otherwise the rule it breaks.
    pub(crate) fn accept(&self, value: &Value) -> Result<(), String> {
        let type_ok = match self.kind {
            ParameterType::String => value.is_string(),
            ParameterType::Integer => value.is_i64() || value.is_u64(),
            ParameterType::Number => value.is_number(),
            ParameterType::Boolean => value.is_boolean(),
            ParameterType::Strings => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
            // Read (and refused) by `accept_quantity`, with the bounds.
            ParameterType::Quantity => true,
        };
        if !type_ok {
            let expected = match self.kind {
                ParameterType::String => "a string",
                ParameterType::Integer => "a whole number",
                ParameterType::Number => "a number",
                ParameterType::Boolean => "true or false",
                ParameterType::Strings => "a list of strings",
                ParameterType::Quantity => "a quantity",
            };
            return Err(format!("must be {expected}"));
        }
        if let Some(allowed) = &self.one_of
            && !allowed.contains(value)
        {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            return Err(format!("must be one of {}", list.join(", ")));
        }
        match self.kind {
            ParameterType::Integer | ParameterType::Number => self.accept_number(value),
            ParameterType::Quantity => self.accept_quantity(value),
            ParameterType::String => match value.as_str() {
                Some(text) => self.accept_text(text, ""),
                None => Ok(()),
            },
            ParameterType::Strings => self.accept_list(value),
            ParameterType::Boolean => Ok(()),
        }
    }

    fn accept_number(&self, value: &Value) -> Result<(), String> {
        let Some(number) = value.as_f64() else {
            return Ok(());
        };
        if let Some(min) = self.min_number()
            && number < min
        {
            return Err(format!("must be at least {min}"));
        }
        if let Some(max) = self.max_number()
            && number > max
        {
            return Err(format!("must be at most {max}"));
        }
        Ok(())
    }

    fn accept_list(&self, value: &Value) -> Result<(), String> {
        let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
        if let Some(max) = self.max_items
            && items.len() > max
        {
            return Err(format!(
                "must list at most {max} items (got {})",
                items.len()
            ));
        }
        for (index, item) in items.iter().enumerate() {
            if let Some(text) = item.as_str() {
                self.accept_text(text, &format!("item {index} "))?;
            }
        }
        Ok(())
    }

    /// A string's length and pattern; `which` names a list item.
    fn accept_text(&self, text: &str, which: &str) -> Result<(), String> {
        let length = text.chars().count();
        if let Some(max) = self.max_length
            && length > max
        {
            return Err(format!(
                "{which}must be at most {max} characters long (got {length})"
            ));
        }
        if let Some(pattern) = &self.pattern {
            // Checked at load; a pattern that no longer compiles refuses.
            let matches = compile(pattern).is_ok_and(|re| re.is_match(text));
            if !matches {
                return Err(format!("{which}must match `{pattern}` (got {text:?})"));
            }
        }
        Ok(())
    }

    fn accept_quantity(&self, value: &Value) -> Result<(), String> {
        let (given, parsed) = match value {
            Value::String(text) => (text.clone(), text.parse::<Quantity>()),
            Value::Number(number) => (number.to_string(), Quantity::from_number(number)),
            other => (other.to_string(), Err(super::QuantityError::NoNumber)),
        };
        let quantity = match parsed {
            Ok(quantity) if !quantity.is_negative() => quantity,
            Ok(_) => {
                return Err(format!(
                    "{}, not a negative one (got {given})",
                    self.quantity_rule()
                ));
            }
            Err(err) => {
                return Err(format!("{} (got {given}: {err})", self.quantity_rule()));
            }
        };
        if let Some(unit) = self.unit_rule(quantity) {
            return Err(format!("must be {unit} (got {given})"));
        }
        let what = self.quantity_noun();
        if let Some(min) = &self.minimum
            && min.quantity().is_ok_and(|min| quantity < min)
        {
            return Err(format!("must be {what} at least {min} (got {given})"));
        }
        if let Some(max) = &self.maximum
            && max.quantity().is_ok_and(|max| quantity > max)
        {
            return Err(format!("must be {what} at most {max} (got {given})"));
        }
        Ok(())
    }

    /// `a memory quantity`, `a CPU quantity`.
    fn quantity_noun(&self) -> &'static str {
        match self.measures {
            Some(QuantityKind::Cpu) => "a CPU quantity",
            Some(QuantityKind::Memory) => "a memory quantity",
            Some(QuantityKind::Storage) => "a storage quantity",
            None => "a Kubernetes quantity",
        }
    }

    /// The whole rule, for a value that is not a quantity at all: `must be a
    /// CPU quantity from 500m to 16, such as "500m" or "2"`.
    fn quantity_rule(&self) -> String {
        let range = match (&self.minimum, &self.maximum) {
            (Some(min), Some(max)) => format!(" from {min} to {max}"),
            (Some(min), None) => format!(" at least {min}"),
            (None, Some(max)) => format!(" at most {max}"),
            (None, None) => String::new(),
        };
        let examples = match self.measures {
            Some(QuantityKind::Cpu) => r#""500m" or "2""#,
            Some(QuantityKind::Memory | QuantityKind::Storage) | None => r#""512Mi" or "4G""#,
        };
        format!(
            "must be {}{range}, such as {examples}",
            self.quantity_noun()
        )
    }

    /// The unit rule `quantity` breaks for what it measures, if any.
    pub(super) fn unit_rule(&self, quantity: Quantity) -> Option<&'static str> {
        match self.measures {
            Some(QuantityKind::Cpu) if !quantity.is_whole_milli() => {
                Some("a CPU quantity in whole millicores (1m is the finest)")
            }
            Some(QuantityKind::Memory) if quantity.whole_units().is_none() => {
                Some("a memory quantity in whole bytes")
            }
            Some(QuantityKind::Storage) if quantity.whole_units().is_none() => {
                Some("a storage quantity in whole bytes")
            }
            _ => None,
        }
    }
}
