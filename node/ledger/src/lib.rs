//! Stablelane's ledger: the state machine behind the off-chain balances.
//!
//! A [`Ledger`] holds slots — (owner, token) pairs with a balance, a nonce and a salt — and
//! applies operations to them: deposits consumed from the chain's queue, signed transfers
//! and withdrawals, forced withdrawals requested on-chain, and viewing-key registrations.
//! It is a deterministic function of its inputs: no I/O, no clock (the caller passes the
//! time), no async, no signature checks (the sequencer verifies signatures before, in
//! parallel). Every refusal is a [`Rejection`], and a refused operation changes nothing.
//!
//! Money is `u128` base units with checked arithmetic; per token the ledger keeps
//! `deposited − withdrawn` and [`Ledger::check_supply`] verifies it equals the sum of
//! balances.
//!
//! Every slot stays within what a batch note carries (batch data version 2): a balance of at
//! most [`BALANCE_MAX`] (2^96 − 1 base units) and a nonce of at most [`NONCE_MAX`]
//! (2^40 − 1). A credit past the first is refused with [`Rejection::BalanceOverflow`], a
//! debit from a slot whose nonce reached the second with [`Rejection::NonceExhausted`].
//!
//! A deposit that cannot be credited (its [`DepositRefusal`]: the balance bound, the slot
//! limit, a token the configuration lacks) does not stop the deposit queue: the caller
//! consumes it with [`Ledger::refuse_deposit`], which advances the queue and credits nothing,
//! and the batch lists it so the contract makes it refundable.

mod rejection;

use std::collections::{BTreeMap, HashMap};

use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use stablelane::{Amount, Nonce, SlotIndex, Transfer, Withdrawal};

pub use rejection::{DepositRefusal, Rejection};
pub use stablelane::salt::derive_salt;

/// Largest balance of a slot, in base units: 2^96 − 1, the 12 bytes a batch note gives it.
/// That is about 79 billion tokens of an 18-decimal token (7.9 · 10^22 of a 6-decimal one)
/// per slot. A credit that would go past it is [`Rejection::BalanceOverflow`].
pub const BALANCE_MAX: u128 = (1 << 96) - 1;
/// Largest nonce of a slot: 2^40 − 1, the 5 bytes a batch note gives it (a trillion
/// transactions per slot). A debit from a slot whose nonce is `NONCE_MAX` is
/// [`Rejection::NonceExhausted`], so a nonce never goes past it.
pub const NONCE_MAX: u64 = (1 << 40) - 1;

/// `balance + amount`, refused past [`BALANCE_MAX`].
fn credited(balance: Amount, amount: Amount) -> Result<Amount, Rejection> {
    balance
        .checked_add(amount)
        .filter(|b| b.base_units() <= BALANCE_MAX)
        .ok_or(Rejection::BalanceOverflow)
}

/// Settings of a ledger that every node replaying the same journal must share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerConfig {
    /// Supported tokens and their minimum fee per transaction, in base units.
    pub tokens: BTreeMap<Address, Amount>,
    /// The account fees are credited to (the operator).
    pub fee_recipient: Address,
    /// Secret the salts of unregistered owners are derived from.
    pub operator_secret: B256,
    /// Upper bound on the number of slots (the state tree has 2^32 leaves).
    pub slots_max: u32,
}

/// An account of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// Owner address.
    pub owner: Address,
    /// ERC-20 token.
    pub token: Address,
    /// Balance in base units.
    pub balance: Amount,
    /// Nonce the next transfer or withdrawal from this slot must carry.
    pub nonce: Nonce,
    /// Per-slot secret field element (big-endian, < r) hashed into the leaf.
    pub salt: B256,
}

/// A deposit from the contract's queue, credited after enough confirmations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    /// Position in the contract's deposit queue.
    pub queue_index: u64,
    /// Credited account.
    pub recipient: Address,
    /// ERC-20 token.
    pub token: Address,
    /// Amount received by the contract.
    pub amount: Amount,
}

/// A forced-withdrawal request from the contract's queue.
///
/// Serialized (in the node's journal) as `{queue_index, owner, token, recipient}`; a record
/// without `recipient`, written before requests named one, reads with the owner as the
/// recipient, which is what such a request paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ForcedWithdrawalFields")]
pub struct ForcedWithdrawal {
    /// Position in the contract's forced-request queue.
    pub queue_index: u64,
    /// Requesting owner: their whole balance of `token` is withdrawn.
    pub owner: Address,
    /// ERC-20 token.
    pub token: Address,
    /// Who the withdrawn balance is paid to on-chain: the address the owner named in
    /// `requestForcedWithdrawal` (bound by the queue's rolling hash), often the owner itself.
    pub recipient: Address,
}

/// What a serialized [`ForcedWithdrawal`] may hold: `recipient` is absent from requests
/// journaled before they named one.
#[derive(Deserialize)]
struct ForcedWithdrawalFields {
    queue_index: u64,
    owner: Address,
    token: Address,
    #[serde(default)]
    recipient: Option<Address>,
}

impl From<ForcedWithdrawalFields> for ForcedWithdrawal {
    fn from(fields: ForcedWithdrawalFields) -> Self {
        Self {
            queue_index: fields.queue_index,
            owner: fields.owner,
            token: fields.token,
            recipient: fields.recipient.unwrap_or(fields.owner),
        }
    }
}

/// A withdrawal the next batch must carry to the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayOut {
    /// On-chain recipient.
    pub recipient: Address,
    /// ERC-20 token.
    pub token: Address,
    /// Amount in base units (never zero).
    pub amount: Amount,
}

/// What an applied operation changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// Slots whose leaf changed, in order of first change (the sender first for transfers
    /// and withdrawals); new slots are included.
    pub changed: Vec<SlotIndex>,
    /// Slots created by this operation.
    pub created: Vec<SlotIndex>,
    /// A withdrawal to pay out on-chain, if any.
    pub pay_out: Option<PayOut>,
}

impl Effects {
    fn touch(&mut self, slot: SlotIndex, created: bool) {
        if !self.changed.contains(&slot) {
            self.changed.push(slot);
        }
        if created && !self.created.contains(&slot) {
            self.created.push(slot);
        }
    }
}

/// Per-token money accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supply {
    /// Deposits credited so far.
    pub deposited: Amount,
    /// Withdrawals (signed and forced) debited so far.
    pub withdrawn: Amount,
}

/// Everything a [`Ledger`] holds besides its configuration: what a snapshot stores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerImage {
    /// Every slot, slot `i` at `[i]`.
    pub slots: Vec<Slot>,
    /// Registered viewing keys, sorted by owner.
    pub viewing_keys: Vec<(Address, B256)>,
    /// Per-token accounting, sorted by token.
    pub supply: Vec<(Address, Supply)>,
    /// Deposits consumed from the contract's queue.
    pub deposits_consumed: u64,
    /// Forced-withdrawal requests consumed from the contract's queue.
    pub forced_consumed: u64,
}

/// Why a [`LedgerImage`] cannot be a ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// Two slots with the same owner and token.
    #[error("slots {first} and {second} have the same owner and token")]
    DuplicateSlot {
        /// The earlier slot.
        first: u32,
        /// The later one.
        second: u32,
    },
    /// More slots than the configured maximum.
    #[error("{slots} slots, the ledger allows {max}")]
    TooManySlots {
        /// Slots in the image.
        slots: usize,
        /// `slots_max` of the configuration.
        max: u32,
    },
    /// A token's balances do not add up to its deposits minus withdrawals.
    #[error("supply check failed: {0}")]
    Supply(Rejection),
    /// A slot's balance is above [`BALANCE_MAX`] or its nonce above [`NONCE_MAX`].
    #[error("slot {slot} has a balance or nonce beyond the ledger's bounds")]
    OutOfBounds {
        /// The slot.
        slot: u32,
    },
}

/// The ledger state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    config: LedgerConfig,
    slots: Vec<Slot>,
    by_key: HashMap<(Address, Address), SlotIndex>,
    viewing_keys: HashMap<Address, B256>,
    supply: BTreeMap<Address, Supply>,
    deposits_consumed: u64,
    forced_consumed: u64,
}

impl Ledger {
    /// An empty ledger.
    pub fn new(config: LedgerConfig) -> Self {
        let supply = config
            .tokens
            .keys()
            .map(|t| (*t, Supply::default()))
            .collect();
        Self {
            config,
            slots: Vec::new(),
            by_key: HashMap::new(),
            viewing_keys: HashMap::new(),
            supply,
            deposits_consumed: 0,
            forced_consumed: 0,
        }
    }

    /// A copy of the state (for a snapshot). Costs a copy of every slot (96 bytes each).
    pub fn image(&self) -> LedgerImage {
        self.image_into(Vec::new())
    }

    /// [`image`](Self::image), copying the slots into `slots` (cleared first). A buffer
    /// whose capacity suffices and whose memory is already resident makes the copy a
    /// memory-speed `memcpy` instead of a fresh allocation faulting in every page.
    pub fn image_into(&self, mut slots: Vec<Slot>) -> LedgerImage {
        slots.clear();
        slots.extend_from_slice(&self.slots);
        let mut viewing_keys: Vec<(Address, B256)> =
            self.viewing_keys.iter().map(|(o, k)| (*o, *k)).collect();
        viewing_keys.sort_unstable_by_key(|(owner, _)| *owner);
        LedgerImage {
            slots,
            viewing_keys,
            supply: self.supply.iter().map(|(t, s)| (*t, *s)).collect(),
            deposits_consumed: self.deposits_consumed,
            forced_consumed: self.forced_consumed,
        }
    }

    /// The ledger an [`image`](Self::image) was taken of, under `config` (tokens added to
    /// the configuration since start with nothing deposited).
    ///
    /// # Errors
    ///
    /// [`ImageError`] for duplicate slots, more slots than `config` allows, or a supply that
    /// does not add up.
    pub fn from_image(config: LedgerConfig, image: LedgerImage) -> Result<Self, ImageError> {
        if image.slots.len() > config.slots_max as usize {
            return Err(ImageError::TooManySlots {
                slots: image.slots.len(),
                max: config.slots_max,
            });
        }
        let mut by_key = HashMap::with_capacity(image.slots.len());
        for (i, slot) in image.slots.iter().enumerate() {
            let index = SlotIndex(i as u32);
            if let Some(first) = by_key.insert((slot.owner, slot.token), index) {
                return Err(ImageError::DuplicateSlot {
                    first: first.get(),
                    second: index.get(),
                });
            }
            if slot.balance.base_units() > BALANCE_MAX || slot.nonce.get() > NONCE_MAX {
                return Err(ImageError::OutOfBounds { slot: index.get() });
            }
        }
        let mut supply: BTreeMap<Address, Supply> = image.supply.into_iter().collect();
        for token in config.tokens.keys() {
            supply.entry(*token).or_default();
        }
        let ledger = Self {
            config,
            slots: image.slots,
            by_key,
            viewing_keys: image.viewing_keys.into_iter().collect(),
            supply,
            deposits_consumed: image.deposits_consumed,
            forced_consumed: image.forced_consumed,
        };
        ledger.check_supply().map_err(ImageError::Supply)?;
        Ok(ledger)
    }

    /// The configuration.
    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    /// Number of slots.
    pub fn slot_count(&self) -> u32 {
        // `slots_max: u32` bounds the length.
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    /// A slot by index.
    pub fn slot(&self, index: SlotIndex) -> Option<&Slot> {
        self.slots.get(index.get() as usize)
    }

    /// The index of (owner, token), if the slot exists.
    pub fn slot_index(&self, owner: Address, token: Address) -> Option<SlotIndex> {
        self.by_key.get(&(owner, token)).copied()
    }

    /// Balance of (owner, token); zero when the slot does not exist.
    pub fn balance(&self, owner: Address, token: Address) -> Amount {
        self.slot_index(owner, token)
            .and_then(|i| self.slot(i))
            .map_or(Amount::ZERO, |s| s.balance)
    }

    /// Nonce the next transaction of (owner, token) must carry.
    pub fn nonce(&self, owner: Address, token: Address) -> Nonce {
        self.slot_index(owner, token)
            .and_then(|i| self.slot(i))
            .map_or(Nonce(0), |s| s.nonce)
    }

    /// Deposits consumed from the contract's queue.
    pub fn deposits_consumed(&self) -> u64 {
        self.deposits_consumed
    }

    /// Forced-withdrawal requests consumed from the contract's queue.
    pub fn forced_consumed(&self) -> u64 {
        self.forced_consumed
    }

    /// Per-token accounting.
    pub fn supply(&self, token: Address) -> Option<Supply> {
        self.supply.get(&token).copied()
    }

    /// Minimum fee for a transaction in `token`.
    pub fn fee_quote(&self, token: Address) -> Result<Amount, Rejection> {
        self.config
            .tokens
            .get(&token)
            .copied()
            .ok_or(Rejection::UnsupportedToken)
    }

    /// Whether `owner` registered a viewing key.
    pub fn viewing_key(&self, owner: Address) -> Option<B256> {
        self.viewing_keys.get(&owner).copied()
    }

    /// Credits a deposit; deposits must be consumed in queue order, each exactly once.
    pub fn apply_deposit(&mut self, deposit: &Deposit) -> Result<Effects, Rejection> {
        if deposit.queue_index != self.deposits_consumed {
            return Err(Rejection::DepositOutOfOrder {
                expected: self.deposits_consumed,
            });
        }
        self.fee_quote(deposit.token)?;
        if deposit.amount.is_zero() {
            return Err(Rejection::ZeroAmount);
        }
        let supply = self.supply_of(deposit.token)?;
        let deposited = supply
            .deposited
            .checked_add(deposit.amount)
            .ok_or(Rejection::AmountOverflow)?;
        let (index, created) = self.ensure_slot_checked(deposit.recipient, deposit.token)?;
        let current = if created {
            Amount::ZERO
        } else {
            self.slot_ref(index)?.balance
        };
        let balance = credited(current, deposit.amount)?;

        // Checks done: apply.
        if created {
            self.create_slot(deposit.recipient, deposit.token);
        }
        self.slot_mut(index)?.balance = balance;
        self.supply_mut(deposit.token)?.deposited = deposited;
        self.deposits_consumed += 1;
        let mut effects = Effects::default();
        effects.touch(index, created);
        Ok(effects)
    }

    /// Consumes a deposit as refused: the queue advances past it and nothing is credited (no
    /// slot, no balance, no supply change). For a deposit [`apply_deposit`](Self::apply_deposit)
    /// refused with a [`DepositRefusal`]. The refusal is not re-checked here, so that a replay
    /// of the journaled refusal gives the same ledger whatever the configuration says today.
    ///
    /// # Errors
    ///
    /// [`Rejection::DepositOutOfOrder`] unless `deposit` is the next in queue order.
    pub fn refuse_deposit(&mut self, deposit: &Deposit) -> Result<(), Rejection> {
        if deposit.queue_index != self.deposits_consumed {
            return Err(Rejection::DepositOutOfOrder {
                expected: self.deposits_consumed,
            });
        }
        self.deposits_consumed += 1;
        Ok(())
    }

    /// Applies a transfer whose signature the caller has verified, at unix time `now_s`.
    pub fn apply_transfer(&mut self, t: &Transfer, now_s: u64) -> Result<Effects, Rejection> {
        let (from, debit) = self.check_debit(
            t.from,
            t.token,
            t.amount,
            t.fee,
            t.nonce,
            t.valid_until,
            now_s,
        )?;
        let mut effects = Effects::default();
        let fee_recipient = self.config.fee_recipient;

        // Credit checks before any change: the payee and the fee recipient may be new, and
        // may be the payer itself.
        let mut plan: Vec<(Address, Amount)> = vec![(t.to, t.amount)];
        if !t.fee.is_zero() {
            plan.push((fee_recipient, t.fee));
        }
        let new_slots = plan
            .iter()
            .filter(|(owner, _)| self.slot_index(*owner, t.token).is_none())
            .map(|(owner, _)| *owner)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if self.slots.len() + new_slots > self.config.slots_max as usize {
            return Err(Rejection::SlotLimitReached);
        }
        let mut balances: BTreeMap<Address, Amount> = BTreeMap::new();
        let payer_after = self
            .slot_ref(from)?
            .balance
            .checked_sub(debit)
            .ok_or(Rejection::InsufficientBalance)?;
        balances.insert(t.from, payer_after);
        for (owner, amount) in &plan {
            let current = match balances.get(owner) {
                Some(b) => *b,
                None => self.balance(*owner, t.token),
            };
            balances.insert(*owner, credited(current, *amount)?);
        }

        // Apply.
        let sender = self.slot_mut(from)?;
        sender.nonce = Nonce(sender.nonce.get() + 1);
        effects.touch(from, false);
        for (owner, _) in &plan {
            let created = self.slot_index(*owner, t.token).is_none();
            let index = if created {
                self.create_slot(*owner, t.token)
            } else {
                self.slot_index(*owner, t.token)
                    .ok_or(Rejection::UnknownAccount)?
            };
            effects.touch(index, created);
        }
        for (owner, balance) in balances {
            let index = self
                .slot_index(owner, t.token)
                .ok_or(Rejection::UnknownAccount)?;
            self.slot_mut(index)?.balance = balance;
        }
        Ok(effects)
    }

    /// Applies a withdrawal whose signature the caller has verified, at unix time `now_s`.
    pub fn apply_withdrawal(&mut self, w: &Withdrawal, now_s: u64) -> Result<Effects, Rejection> {
        if w.recipient == Address::ZERO {
            return Err(Rejection::ZeroRecipient);
        }
        let (from, debit) = self.check_debit(
            w.from,
            w.token,
            w.amount,
            w.fee,
            w.nonce,
            w.valid_until,
            now_s,
        )?;
        let fee_recipient = self.config.fee_recipient;
        let fee_is_new = !w.fee.is_zero() && self.slot_index(fee_recipient, w.token).is_none();
        if fee_is_new && self.slots.len() >= self.config.slots_max as usize {
            return Err(Rejection::SlotLimitReached);
        }
        let supply = self.supply_of(w.token)?;
        let withdrawn = supply
            .withdrawn
            .checked_add(w.amount)
            .ok_or(Rejection::AmountOverflow)?;
        let payer_after = self
            .slot_ref(from)?
            .balance
            .checked_sub(debit)
            .ok_or(Rejection::InsufficientBalance)?;
        let fee_after = if w.fee.is_zero() {
            None
        } else if fee_recipient == w.from {
            Some(credited(payer_after, w.fee)?)
        } else {
            Some(credited(self.balance(fee_recipient, w.token), w.fee)?)
        };

        // Apply.
        let mut effects = Effects::default();
        let sender = self.slot_mut(from)?;
        sender.nonce = Nonce(sender.nonce.get() + 1);
        sender.balance = payer_after;
        effects.touch(from, false);
        if let Some(fee_after) = fee_after {
            let index = match self.slot_index(fee_recipient, w.token) {
                Some(i) => i,
                None => {
                    let i = self.create_slot(fee_recipient, w.token);
                    effects.touch(i, true);
                    i
                }
            };
            self.slot_mut(index)?.balance = fee_after;
            effects.touch(index, false);
        }
        self.supply_mut(w.token)?.withdrawn = withdrawn;
        effects.pay_out = Some(PayOut {
            recipient: w.recipient,
            token: w.token,
            amount: w.amount,
        });
        Ok(effects)
    }

    /// Serves a forced-withdrawal request: withdraws the owner's whole balance of the token
    /// to the request's recipient (nothing to pay out when it is zero or the slot does not
    /// exist). Requests must be consumed in queue order, each exactly once; a zero
    /// recipient (which the contract never queues) is refused.
    pub fn apply_forced_withdrawal(
        &mut self,
        request: &ForcedWithdrawal,
    ) -> Result<Effects, Rejection> {
        if request.queue_index != self.forced_consumed {
            return Err(Rejection::ForcedOutOfOrder {
                expected: self.forced_consumed,
            });
        }
        if request.recipient.is_zero() {
            return Err(Rejection::ZeroRecipient);
        }
        let mut effects = Effects::default();
        let slot = self.slot_index(request.owner, request.token);
        let amount = slot
            .and_then(|i| self.slot(i))
            .map_or(Amount::ZERO, |s| s.balance);
        if let (Some(index), false) = (slot, amount.is_zero()) {
            let supply = self.supply_of(request.token)?;
            let withdrawn = supply
                .withdrawn
                .checked_add(amount)
                .ok_or(Rejection::AmountOverflow)?;
            self.slot_mut(index)?.balance = Amount::ZERO;
            self.supply_mut(request.token)?.withdrawn = withdrawn;
            effects.touch(index, false);
            effects.pay_out = Some(PayOut {
                recipient: request.recipient,
                token: request.token,
                amount,
            });
        }
        self.forced_consumed += 1;
        Ok(effects)
    }

    /// Records `owner`'s viewing key (from its signed viewing-key message) and re-salts its
    /// slots with salts derived from it, so the owner can open its own leaves from chain
    /// data. Registering the same key again changes nothing.
    pub fn register_viewing_key(
        &mut self,
        owner: Address,
        viewing_key: B256,
    ) -> Result<Effects, Rejection> {
        let mut effects = Effects::default();
        if self.viewing_keys.get(&owner) == Some(&viewing_key) {
            return Ok(effects);
        }
        if self.viewing_keys.contains_key(&owner) {
            return Err(Rejection::ViewingKeyAlreadyRegistered);
        }
        self.viewing_keys.insert(owner, viewing_key);
        let indices: Vec<SlotIndex> = self
            .by_key
            .iter()
            .filter(|((o, _), _)| *o == owner)
            .map(|(_, i)| *i)
            .collect();
        let mut indices = indices;
        indices.sort();
        for index in indices {
            let salt = derive_salt(&viewing_key, owner, self.slot_ref(index)?.token);
            self.slot_mut(index)?.salt = salt;
            effects.touch(index, false);
        }
        Ok(effects)
    }

    /// Checks that per token the sum of balances equals deposits minus withdrawals.
    pub fn check_supply(&self) -> Result<(), Rejection> {
        let mut sums: BTreeMap<Address, u128> = BTreeMap::new();
        for slot in &self.slots {
            let sum = sums.entry(slot.token).or_default();
            *sum = sum
                .checked_add(slot.balance.base_units())
                .ok_or(Rejection::BalanceOverflow)?;
        }
        for (token, supply) in &self.supply {
            let expected = supply
                .deposited
                .checked_sub(supply.withdrawn)
                .ok_or(Rejection::SupplyMismatch)?;
            if sums.get(token).copied().unwrap_or(0) != expected.base_units() {
                return Err(Rejection::SupplyMismatch);
            }
        }
        if sums.keys().any(|t| !self.supply.contains_key(t)) {
            return Err(Rejection::SupplyMismatch);
        }
        Ok(())
    }

    // ------------------------------------------------------------------ helpers

    /// Common checks of a signed debit; returns the sender's slot and amount + fee.
    #[allow(clippy::too_many_arguments)]
    fn check_debit(
        &self,
        from: Address,
        token: Address,
        amount: Amount,
        fee: Amount,
        nonce: Nonce,
        valid_until: u64,
        now_s: u64,
    ) -> Result<(SlotIndex, Amount), Rejection> {
        let min_fee = self.fee_quote(token)?;
        if amount.is_zero() {
            return Err(Rejection::ZeroAmount);
        }
        if valid_until <= now_s {
            return Err(Rejection::Expired);
        }
        let debit = amount.checked_add(fee).ok_or(Rejection::AmountOverflow)?;
        if fee < min_fee {
            return Err(Rejection::FeeTooLow);
        }
        let Some(index) = self.slot_index(from, token) else {
            // No slot: nonce 0 expected, balance 0.
            return Err(if nonce.get() > 0 {
                Rejection::NonceTooHigh
            } else {
                Rejection::InsufficientBalance
            });
        };
        let slot = self.slot_ref(index)?;
        if nonce < slot.nonce {
            return Err(Rejection::NonceTooLow);
        }
        if nonce > slot.nonce {
            return Err(Rejection::NonceTooHigh);
        }
        // The nonce after this debit must stay within what a batch note carries.
        if slot.nonce.get() >= NONCE_MAX {
            return Err(Rejection::NonceExhausted);
        }
        if slot.balance < debit {
            return Err(Rejection::InsufficientBalance);
        }
        Ok((index, debit))
    }

    fn supply_of(&self, token: Address) -> Result<Supply, Rejection> {
        self.supply
            .get(&token)
            .copied()
            .ok_or(Rejection::UnsupportedToken)
    }

    fn supply_mut(&mut self, token: Address) -> Result<&mut Supply, Rejection> {
        self.supply
            .get_mut(&token)
            .ok_or(Rejection::UnsupportedToken)
    }

    fn slot_ref(&self, index: SlotIndex) -> Result<&Slot, Rejection> {
        self.slots
            .get(index.get() as usize)
            .ok_or(Rejection::UnknownAccount)
    }

    fn slot_mut(&mut self, index: SlotIndex) -> Result<&mut Slot, Rejection> {
        self.slots
            .get_mut(index.get() as usize)
            .ok_or(Rejection::UnknownAccount)
    }

    /// The slot of (owner, token) and whether it would be created; refuses past the limit.
    fn ensure_slot_checked(
        &self,
        owner: Address,
        token: Address,
    ) -> Result<(SlotIndex, bool), Rejection> {
        match self.slot_index(owner, token) {
            Some(index) => Ok((index, false)),
            None if self.slots.len() < self.config.slots_max as usize => {
                Ok((SlotIndex(self.slot_count()), true))
            }
            None => Err(Rejection::SlotLimitReached),
        }
    }

    /// Creates the slot (callers checked the limit and that it does not exist).
    fn create_slot(&mut self, owner: Address, token: Address) -> SlotIndex {
        let index = SlotIndex(self.slot_count());
        let salt = match self.viewing_keys.get(&owner) {
            Some(key) => derive_salt(key, owner, token),
            None => derive_salt(&self.config.operator_secret, owner, token),
        };
        self.slots.push(Slot {
            owner,
            token,
            balance: Amount::ZERO,
            nonce: Nonce(0),
            salt,
        });
        self.by_key.insert((owner, token), index);
        index
    }
}

#[cfg(test)]
mod tests;
