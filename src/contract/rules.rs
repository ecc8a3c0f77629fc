//! The validation rules of the contract format. SKELETON.
