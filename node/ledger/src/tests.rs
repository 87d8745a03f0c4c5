use alloy::primitives::{Address, B256};
use proptest::prelude::*;
use stablelane::{Amount, Nonce, SlotIndex, Transfer, Withdrawal};

use super::*;

const NOW: u64 = 1_000_000;

fn addr(i: u8) -> Address {
    Address::repeat_byte(i + 1)
}

fn token(i: u8) -> Address {
    Address::repeat_byte(0xa0 + i)
}

fn operator() -> Address {
    Address::repeat_byte(0xee)
}

fn ledger() -> Ledger {
    Ledger::new(LedgerConfig {
        tokens: [(token(0), Amount(1)), (token(1), Amount(0))]
            .into_iter()
            .collect(),
        fee_recipient: operator(),
        operator_secret: B256::repeat_byte(0x5e),
        slots_max: 1_000,
    })
}

fn deposit(l: &mut Ledger, who: Address, tok: Address, amount: u128) -> Effects {
    let d = Deposit {
        queue_index: l.deposits_consumed(),
        recipient: who,
        token: tok,
        amount: Amount(amount),
    };
    l.apply_deposit(&d).expect("deposit")
}

fn transfer(from: Address, to: Address, amount: u128, fee: u128, nonce: u64) -> Transfer {
    Transfer {
        from,
        to,
        token: token(0),
        amount: Amount(amount),
        fee: Amount(fee),
        nonce: Nonce(nonce),
        valid_until: NOW + 60,
    }
}

/// Forced-withdrawal request `queue_index` of `owner`'s `token(0)` slot, paid to the owner.
fn forced(queue_index: u64, owner: Address) -> ForcedWithdrawal {
    ForcedWithdrawal {
        queue_index,
        owner,
        token: token(0),
        recipient: owner,
    }
}

/// A withdrawal of `token(0)` to `addr(5)`.
fn withdrawal(from: Address, amount: u128, fee: u128, nonce: u64) -> Withdrawal {
    Withdrawal {
        from,
        recipient: addr(5),
        token: token(0),
        amount: Amount(amount),
        fee: Amount(fee),
        nonce: Nonce(nonce),
        valid_until: NOW + 1,
    }
}

#[test]
fn deposits_create_slots_in_order_and_credit() {
    let mut l = ledger();
    let e = deposit(&mut l, addr(0), token(0), 100);
    assert_eq!(e.created, vec![SlotIndex(0)]);
    let e = deposit(&mut l, addr(1), token(0), 50);
    assert_eq!(e.created, vec![SlotIndex(1)]);
    let e = deposit(&mut l, addr(0), token(0), 1);
    assert!(e.created.is_empty());
    assert_eq!(e.changed, vec![SlotIndex(0)]);
    assert_eq!(l.balance(addr(0), token(0)), Amount(101));
    assert_eq!(l.deposits_consumed(), 3);
    assert_eq!(l.supply(token(0)).unwrap().deposited, Amount(151));
    l.check_supply().unwrap();
}

#[test]
fn deposits_are_consumed_once_and_in_order() {
    let mut l = ledger();
    deposit(&mut l, addr(0), token(0), 100);
    let replay = Deposit {
        queue_index: 0,
        recipient: addr(0),
        token: token(0),
        amount: Amount(100),
    };
    assert_eq!(
        l.apply_deposit(&replay),
        Err(Rejection::DepositOutOfOrder { expected: 1 })
    );
    let skip = Deposit {
        queue_index: 2,
        ..replay.clone()
    };
    assert_eq!(
        l.apply_deposit(&skip),
        Err(Rejection::DepositOutOfOrder { expected: 1 })
    );
    assert_eq!(l.balance(addr(0), token(0)), Amount(100));
}

#[test]
fn transfer_moves_money_pays_fee_and_bumps_nonce() {
    let mut l = ledger();
    deposit(&mut l, addr(0), token(0), 100);
    let e = l
        .apply_transfer(&transfer(addr(0), addr(1), 60, 2, 0), NOW)
        .unwrap();
    assert_eq!(e.changed, vec![SlotIndex(0), SlotIndex(1), SlotIndex(2)]);
    assert_eq!(e.created, vec![SlotIndex(1), SlotIndex(2)]);
    assert_eq!(l.balance(addr(0), token(0)), Amount(38));
    assert_eq!(l.balance(addr(1), token(0)), Amount(60));
    assert_eq!(l.balance(operator(), token(0)), Amount(2));
    assert_eq!(l.nonce(addr(0), token(0)), Nonce(1));
    assert_eq!(l.nonce(addr(1), token(0)), Nonce(0));
    l.check_supply().unwrap();
}

#[test]
fn each_rejection_reason_changes_nothing() {
    let mut l = ledger();
    deposit(&mut l, addr(0), token(0), 100);
    let before = l.clone();
    let cases: Vec<(Transfer, Rejection)> = vec![
        (
            Transfer {
                token: Address::repeat_byte(0x77),
                ..transfer(addr(0), addr(1), 1, 1, 0)
            },
            Rejection::UnsupportedToken,
        ),
        (transfer(addr(0), addr(1), 0, 1, 0), Rejection::ZeroAmount),
        (
            transfer(addr(0), addr(1), u128::MAX, 1, 0),
            Rejection::AmountOverflow,
        ),
        (
            Transfer {
                valid_until: NOW,
                ..transfer(addr(0), addr(1), 1, 1, 0)
            },
            Rejection::Expired,
        ),
        (transfer(addr(0), addr(1), 1, 1, 1), Rejection::NonceTooHigh),
        (transfer(addr(0), addr(1), 1, 0, 0), Rejection::FeeTooLow),
        (
            transfer(addr(0), addr(1), 100, 1, 0),
            Rejection::InsufficientBalance,
        ),
        (
            transfer(addr(3), addr(1), 1, 1, 0),
            Rejection::InsufficientBalance,
        ),
    ];
    for (t, expected) in cases {
        assert_eq!(l.apply_transfer(&t, NOW), Err(expected), "{t:?}");
        assert_eq!(l, before);
    }
    l.apply_transfer(&transfer(addr(0), addr(1), 1, 1, 0), NOW)
        .unwrap();
    assert_eq!(
        l.apply_transfer(&transfer(addr(0), addr(1), 1, 1, 0), NOW),
        Err(Rejection::NonceTooLow)
    );
}

#[test]
fn deposits_past_the_balance_bound_are_refused() {
    let mut l = ledger();
    deposit(&mut l, addr(0), token(1), BALANCE_MAX - 5);
    let before = l.clone();
    let over = |recipient, amount| Deposit {
        queue_index: 1,
        recipient,
        token: token(1),
        amount: Amount(amount),
    };
    // Onto an existing slot, and into a new one: nothing changes, no slot is created.
    for d in [
        over(addr(0), 6),
        over(addr(0), BALANCE_MAX),
        over(addr(1), BALANCE_MAX + 1),
    ] {
        assert_eq!(
            l.apply_deposit(&d),
            Err(Rejection::BalanceOverflow),
            "{d:?}"
        );
        assert_eq!(l, before);
    }
    // The token's running total overflowing 128 bits is found first.
    for d in [over(addr(0), u128::MAX), over(addr(1), u128::MAX)] {
        assert_eq!(l.apply_deposit(&d), Err(Rejection::AmountOverflow), "{d:?}");
        assert_eq!(l, before);
    }
    // Up to the bound exactly is fine.
    deposit(&mut l, addr(0), token(1), 5);
    assert_eq!(l.balance(addr(0), token(1)), Amount(BALANCE_MAX));
    deposit(&mut l, addr(1), token(1), BALANCE_MAX);
    assert_eq!(l.balance(addr(1), token(1)), Amount(BALANCE_MAX));
    l.check_supply().unwrap();
}

#[test]
fn transfer_credits_past_the_balance_bound_are_refused() {
    let mut l = ledger();
    deposit(&mut l, addr(0), token(0), 100);
    deposit(&mut l, addr(1), token(0), BALANCE_MAX - 5);
    let before = l.clone();
    // The payee would go past the bound.
    assert_eq!(
        l.apply_transfer(&transfer(addr(0), addr(1), 6, 1, 0), NOW),
        Err(Rejection::BalanceOverflow)
    );
    assert_eq!(l, before);
    // Up to it exactly is fine.
    l.apply_transfer(&transfer(addr(0), addr(1), 5, 1, 0), NOW)
        .unwrap();
    assert_eq!(l.balance(addr(1), token(0)), Amount(BALANCE_MAX));
    l.check_supply().unwrap();
    // A transfer to oneself never goes past it (the payer is debited amount + fee first).
    l.apply_transfer(&transfer(addr(1), addr(1), BALANCE_MAX - 1, 1, 0), NOW)
        .unwrap();
    assert_eq!(l.balance(addr(1), token(0)), Amount(BALANCE_MAX - 1));
    l.check_supply().unwrap();
}

#[test]
fn fee_credits_past_the_balance_bound_are_refused() {
    let mut l = ledger();
    deposit(&mut l, addr(0), token(0), 100);
    deposit(&mut l, operator(), token(0), BALANCE_MAX);
    let before = l.clone();
    // A transfer's fee, to the fee recipient at the bound: the whole transfer is refused.
    assert_eq!(
        l.apply_transfer(&transfer(addr(0), addr(1), 10, 1, 0), NOW),
        Err(Rejection::BalanceOverflow)
    );
    assert_eq!(l, before);
    // A withdrawal's fee likewise.
    let w = withdrawal(addr(0), 10, 1, 0);
    assert_eq!(l.apply_withdrawal(&w, NOW), Err(Rejection::BalanceOverflow));
    assert_eq!(l, before);
    // The fee recipient paying a fee to itself stays within the bound.
    let own = Withdrawal {
        from: operator(),
        ..w
    };
    l.apply_withdrawal(&own, NOW).unwrap();
    assert_eq!(l.balance(operator(), token(0)), Amount(BALANCE_MAX - 10));
    l.check_supply().unwrap();
    // Once the fee recipient has room, the same transfer goes through.
    l.apply_transfer(&transfer(addr(0), addr(1), 10, 1, 0), NOW)
        .unwrap();
    assert_eq!(l.balance(operator(), token(0)), Amount(BALANCE_MAX - 9));
    l.check_supply().unwrap();
}

/// `l` with `owner`'s slot of `tok` at nonce `nonce` (through an image: reaching it with
/// transfers would take 2^40 of them).
fn with_nonce(l: &Ledger, owner: Address, tok: Address, nonce: u64) -> Ledger {
    let mut image = l.image();
    let index = l.slot_index(owner, tok).unwrap().get() as usize;
    image.slots[index].nonce = Nonce(nonce);
    Ledger::from_image(l.config().clone(), image).unwrap()
}

#[test]
fn debits_stop_at_the_nonce_bound() {
    let mut l = ledger();
    deposit(&mut l, addr(0), token(0), 100);
    let mut l = with_nonce(&l, addr(0), token(0), NONCE_MAX - 1);
    // The last nonce a slot can use.
    l.apply_transfer(&transfer(addr(0), addr(1), 10, 1, NONCE_MAX - 1), NOW)
        .unwrap();
    assert_eq!(l.nonce(addr(0), token(0)), Nonce(NONCE_MAX));
    let before = l.clone();
    assert_eq!(
        l.apply_transfer(&transfer(addr(0), addr(1), 10, 1, NONCE_MAX), NOW),
        Err(Rejection::NonceExhausted)
    );
    assert_eq!(l, before);
    let w = withdrawal(addr(0), 10, 1, NONCE_MAX);
    assert_eq!(l.apply_withdrawal(&w, NOW), Err(Rejection::NonceExhausted));
    assert_eq!(l, before);
    // The slot can still be credited, and its balance leaves through a forced withdrawal.
    deposit(&mut l, addr(0), token(0), 7);
    let e = l.apply_forced_withdrawal(&forced(0, addr(0))).unwrap();
    assert_eq!(e.pay_out.map(|p| p.amount), Some(Amount(96)));
    l.check_supply().unwrap();
}

#[test]
fn images_beyond_the_bounds_are_refused() {
    let mut l = ledger();
    deposit(&mut l, addr(0), token(0), 100);
    let mut image = l.image();
    image.slots[0].nonce = Nonce(NONCE_MAX + 1);
    assert_eq!(
        Ledger::from_image(l.config().clone(), image),
        Err(ImageError::OutOfBounds { slot: 0 })
    );
    let mut big = ledger();
    deposit(&mut big, addr(0), token(0), BALANCE_MAX);
    let mut image = big.image();
    image.slots[0].balance = Amount(BALANCE_MAX + 1);
    image.supply[0].1.deposited = Amount(BALANCE_MAX + 1);
    assert_eq!(
        Ledger::from_image(l.config().clone(), image),
        Err(ImageError::OutOfBounds { slot: 0 })
    );
}

#[test]
fn withdrawal_debits_and_pays_out() {
    let mut l = ledger();
    deposit(&mut l, addr(0), token(0), 100);
    let w = withdrawal(addr(0), 70, 1, 0);
    let e = l.apply_withdrawal(&w, NOW).unwrap();
    assert_eq!(
        e.pay_out,
        Some(PayOut {
            recipient: addr(5),
            token: token(0),
            amount: Amount(70)
        })
    );
    assert_eq!(l.balance(addr(0), token(0)), Amount(29));
    assert_eq!(l.supply(token(0)).unwrap().withdrawn, Amount(70));
    l.check_supply().unwrap();
    let zero = Withdrawal {
        recipient: Address::ZERO,
        nonce: Nonce(1),
        ..w
    };
    assert_eq!(
        l.apply_withdrawal(&zero, NOW),
        Err(Rejection::ZeroRecipient)
    );
}

#[test]
fn forced_withdrawal_pays_the_named_recipient() {
    let mut l = ledger();
    deposit(&mut l, addr(0), token(0), 100);
    // The owner (say, blacklisted by the token) names addr(7): the payout goes there.
    let request = ForcedWithdrawal {
        recipient: addr(7),
        ..forced(0, addr(0))
    };
    let e = l.apply_forced_withdrawal(&request).unwrap();
    assert_eq!(
        e.pay_out,
        Some(PayOut {
            recipient: addr(7),
            token: token(0),
            amount: Amount(100)
        })
    );
    assert_eq!(
        l.balance(addr(0), token(0)),
        Amount::ZERO,
        "debited from the owner"
    );
    assert_eq!(
        l.balance(addr(7), token(0)),
        Amount::ZERO,
        "not credited off-chain"
    );
    l.check_supply().unwrap();

    // A zero recipient (never queued by the contract) is refused and changes nothing.
    deposit(&mut l, addr(1), token(0), 5);
    let before = l.clone();
    let zero = ForcedWithdrawal {
        recipient: Address::ZERO,
        ..forced(1, addr(1))
    };
    assert_eq!(
        l.apply_forced_withdrawal(&zero),
        Err(Rejection::ZeroRecipient)
    );
    assert_eq!(l, before);
}

#[test]
fn forced_withdrawal_takes_the_whole_balance() {
    let mut l = ledger();
    deposit(&mut l, addr(0), token(0), 100);
    let e = l.apply_forced_withdrawal(&forced(0, addr(0))).unwrap();
    assert_eq!(
        e.pay_out,
        Some(PayOut {
            recipient: addr(0),
            token: token(0),
            amount: Amount(100)
        })
    );
    assert_eq!(l.balance(addr(0), token(0)), Amount::ZERO);
    // A request for an empty or missing slot is consumed with nothing to pay.
    let e = l.apply_forced_withdrawal(&forced(1, addr(4))).unwrap();
    assert_eq!(e.pay_out, None);
    assert_eq!(l.forced_consumed(), 2);
    assert_eq!(
        l.apply_forced_withdrawal(&forced(1, addr(4))),
        Err(Rejection::ForcedOutOfOrder { expected: 2 })
    );
    l.check_supply().unwrap();
}

#[test]
fn viewing_key_registration_resalts_owned_slots() {
    let mut l = ledger();
    deposit(&mut l, addr(0), token(0), 5);
    deposit(&mut l, addr(0), token(1), 5);
    let before = l.slot(SlotIndex(0)).unwrap().salt;
    let key = B256::repeat_byte(0x42);
    let e = l.register_viewing_key(addr(0), key).unwrap();
    assert_eq!(e.changed, vec![SlotIndex(0), SlotIndex(1)]);
    let after = l.slot(SlotIndex(0)).unwrap().salt;
    assert_ne!(before, after);
    assert_eq!(after, derive_salt(&key, addr(0), token(0)));
    assert_eq!(
        l.register_viewing_key(addr(0), key).unwrap(),
        Effects::default()
    );
    assert_eq!(
        l.register_viewing_key(addr(0), B256::repeat_byte(1)),
        Err(Rejection::ViewingKeyAlreadyRegistered)
    );
    // Slots created after registration are salted from the viewing key too.
    let key2 = B256::repeat_byte(0x43);
    l.register_viewing_key(addr(2), key2).unwrap();
    let e = deposit(&mut l, addr(2), token(0), 1);
    let salt = l.slot(e.created[0]).unwrap().salt;
    assert_eq!(salt, derive_salt(&key2, addr(2), token(0)));
}

#[test]
fn an_image_gives_back_the_same_ledger_and_bad_images_are_refused() {
    let mut l = ledger();
    deposit(&mut l, addr(0), token(0), 50);
    deposit(&mut l, addr(1), token(1), 7);
    l.apply_transfer(&transfer(addr(0), addr(2), 10, 1, 0), NOW)
        .unwrap();
    l.register_viewing_key(addr(2), B256::repeat_byte(9))
        .unwrap();
    let image = l.image();
    assert_eq!(
        Ledger::from_image(l.config().clone(), image.clone()),
        Ok(l.clone())
    );
    // Copied into a used buffer (a snapshot's spare): the same image, its old slots gone.
    let mut used = image.slots.clone();
    used.extend(image.slots.iter().cloned());
    used.reverse();
    assert_eq!(l.image_into(used), image);
    // The rebuilt index finds slots, and the copy goes on like the original.
    let mut copy = Ledger::from_image(l.config().clone(), image.clone()).unwrap();
    let t = transfer(addr(2), addr(0), 3, 1, 0);
    assert_eq!(copy.apply_transfer(&t, NOW), l.apply_transfer(&t, NOW));
    assert_eq!(copy, l);

    let mut duplicate = image.clone();
    duplicate.slots.push(duplicate.slots[1].clone());
    let last = duplicate.slots.len() as u32 - 1;
    assert_eq!(
        Ledger::from_image(l.config().clone(), duplicate),
        Err(ImageError::DuplicateSlot {
            first: 1,
            second: last
        })
    );
    let mut inflated = image.clone();
    inflated.slots[0].balance = Amount(inflated.slots[0].balance.base_units() + 1);
    assert_eq!(
        Ledger::from_image(l.config().clone(), inflated),
        Err(ImageError::Supply(Rejection::SupplyMismatch))
    );
    let small = LedgerConfig {
        slots_max: 2,
        ..l.config().clone()
    };
    assert!(matches!(
        Ledger::from_image(small, image),
        Err(ImageError::TooManySlots { max: 2, .. })
    ));
}

#[test]
fn slot_limit_is_enforced() {
    let mut l = Ledger::new(LedgerConfig {
        slots_max: 2,
        ..ledger().config().clone()
    });
    deposit(&mut l, addr(0), token(0), 10);
    // Transfer would need the payee's and the operator's slot: 3 > 2.
    let before = l.clone();
    assert_eq!(
        l.apply_transfer(&transfer(addr(0), addr(1), 1, 1, 0), NOW),
        Err(Rejection::SlotLimitReached)
    );
    assert_eq!(l, before);
    deposit(&mut l, addr(1), token(0), 10);
    let d = Deposit {
        queue_index: 2,
        recipient: addr(2),
        token: token(0),
        amount: Amount(1),
    };
    assert_eq!(l.apply_deposit(&d), Err(Rejection::SlotLimitReached));
}

// ------------------------------------------------------------------ property tests

#[derive(Debug, Clone)]
enum Op {
    Deposit {
        to: u8,
        tok: u8,
        amount: u128,
        index_skew: i8,
    },
    Transfer {
        from: u8,
        to: u8,
        tok: u8,
        amount: u128,
        fee: u128,
        nonce_skew: i8,
        expired: bool,
    },
    Withdraw {
        from: u8,
        tok: u8,
        amount: u128,
        fee: u128,
        nonce_skew: i8,
    },
    Forced {
        owner: u8,
        tok: u8,
        index_skew: i8,
    },
    Register {
        owner: u8,
        key: u8,
    },
}

fn skew() -> impl Strategy<Value = i8> {
    prop_oneof![8 => Just(0i8), 1 => Just(-1i8), 1 => Just(1i8)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..5u8, 0..3u8, deposit_amount(), skew()).prop_map(|(to, tok, amount, index_skew)| Op::Deposit { to, tok, amount, index_skew }),
        6 => (0..5u8, 0..5u8, 0..3u8, 0..400u128, 0..3u128, skew(), proptest::bool::weighted(0.05))
            .prop_map(|(from, to, tok, amount, fee, nonce_skew, expired)| Op::Transfer { from, to, tok, amount, fee, nonce_skew, expired }),
        2 => (0..5u8, 0..3u8, 0..400u128, 0..3u128, skew()).prop_map(|(from, tok, amount, fee, nonce_skew)| Op::Withdraw { from, tok, amount, fee, nonce_skew }),
        1 => (0..6u8, 0..3u8, skew()).prop_map(|(owner, tok, index_skew)| Op::Forced { owner, tok, index_skew }),
        1 => (0..6u8, 0..2u8).prop_map(|(owner, key)| Op::Register { owner, key }),
    ]
}

/// Mostly small amounts, now and then one that fills a slot to about [`BALANCE_MAX`] or
/// goes past it.
fn deposit_amount() -> impl Strategy<Value = u128> {
    prop_oneof![9 => 0..1_000u128, 1 => (BALANCE_MAX - 1_000)..=(BALANCE_MAX + 1)]
}

fn skewed(base: u64, skew: i8) -> u64 {
    base.saturating_add_signed(i64::from(skew))
}

/// Owner 5 is the fee recipient; token 2 is unsupported.
fn owner(i: u8) -> Address {
    if i == 5 {
        operator()
    } else {
        addr(i)
    }
}

fn total_balances(l: &Ledger, tok: Address) -> u128 {
    (0..l.slot_count())
        .filter_map(|i| l.slot(SlotIndex(i)))
        .filter(|s| s.token == tok)
        .map(|s| s.balance.base_units())
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any sequence of valid and invalid operations conserves supply, never loses or
    /// invents money, moves nonces by exactly one per applied signed debit, keeps every slot
    /// within [`BALANCE_MAX`] and [`NONCE_MAX`], and leaves the ledger untouched when it
    /// refuses.
    #[test]
    fn random_operations_conserve_supply(ops in proptest::collection::vec(op(), 1_000..3_000)) {
        let mut l = ledger();
        let mut paid_out = [0u128; 3];
        let mut applied = [0usize; 5];
        let mut balance_bound_refusals = 0usize;
        for op in &ops {
            let before = l.clone();
            let (result, debit_sender) = match *op {
                Op::Deposit { to, tok, amount, index_skew } => {
                    let d = Deposit { queue_index: skewed(l.deposits_consumed(), index_skew), recipient: owner(to), token: token(tok), amount: Amount(amount) };
                    (l.apply_deposit(&d), None)
                }
                Op::Transfer { from, to, tok, amount, fee, nonce_skew, expired } => {
                    let t = Transfer {
                        from: owner(from), to: owner(to), token: token(tok),
                        amount: Amount(amount), fee: Amount(fee),
                        nonce: Nonce(skewed(l.nonce(owner(from), token(tok)).get(), nonce_skew)),
                        valid_until: if expired { NOW - 1 } else { NOW + 10 },
                    };
                    (l.apply_transfer(&t, NOW), Some((t.from, t.token)))
                }
                Op::Withdraw { from, tok, amount, fee, nonce_skew } => {
                    let w = Withdrawal {
                        from: owner(from), recipient: addr(9), token: token(tok),
                        amount: Amount(amount), fee: Amount(fee),
                        nonce: Nonce(skewed(l.nonce(owner(from), token(tok)).get(), nonce_skew)),
                        valid_until: NOW + 10,
                    };
                    (l.apply_withdrawal(&w, NOW), Some((w.from, w.token)))
                }
                Op::Forced { owner: o, tok, index_skew } => {
                    let f = ForcedWithdrawal { queue_index: skewed(l.forced_consumed(), index_skew), owner: owner(o), token: token(tok), recipient: addr(9) };
                    (l.apply_forced_withdrawal(&f), None)
                }
                Op::Register { owner: o, key } => (l.register_viewing_key(owner(o), B256::repeat_byte(key + 1)), None),
            };
            match result {
                Err(rejection) => {
                    prop_assert_eq!(&l, &before, "a refused {:?} changed the ledger", op);
                    balance_bound_refusals += usize::from(rejection == Rejection::BalanceOverflow);
                }
                Ok(effects) => {
                    let kind = match op { Op::Deposit { .. } => 0, Op::Transfer { .. } => 1, Op::Withdraw { .. } => 2, Op::Forced { .. } => 3, Op::Register { .. } => 4 };
                    applied[kind] += 1;
                    if let Some((from, tok)) = debit_sender {
                        prop_assert_eq!(l.nonce(from, tok).get(), before.nonce(from, tok).get() + 1);
                    }
                    if let Some(p) = effects.pay_out {
                        prop_assert!(!p.amount.is_zero());
                        let t = (0..3u8).position(|i| token(i) == p.token).unwrap_or(2);
                        paid_out[t] += p.amount.base_units();
                    }
                    for slot in &effects.created {
                        prop_assert!(before.slot(*slot).is_none() && l.slot(*slot).is_some());
                    }
                }
            }
            prop_assert!(l.check_supply().is_ok());
            for i in 0..l.slot_count() {
                let slot = l.slot(SlotIndex(i)).unwrap();
                prop_assert!(slot.balance.base_units() <= BALANCE_MAX && slot.nonce.get() <= NONCE_MAX);
            }
        }
        for (i, paid) in paid_out.iter().enumerate() {
            let tok = token(i as u8);
            match l.supply(tok) {
                Some(s) => {
                    prop_assert_eq!(s.withdrawn.base_units(), *paid);
                    prop_assert_eq!(total_balances(&l, tok), s.deposited.base_units() - paid);
                }
                None => prop_assert_eq!(total_balances(&l, tok), 0),
            }
        }
        // The generator must exercise real money movement, not only refusals.
        prop_assert!(applied[0] > 0 && applied[1] > 0 && applied[2] > 0, "applied per kind: {:?}", applied);
        prop_assert!(balance_bound_refusals > 0, "no credit reached BALANCE_MAX");
    }
}

#[test]
fn refused_deposits_advance_the_queue_and_credit_nothing() {
    let mut l = ledger();
    deposit(&mut l, addr(0), token(0), BALANCE_MAX);
    let over = Deposit {
        queue_index: 1,
        recipient: addr(0),
        token: token(0),
        amount: Amount(1),
    };
    let rejection = l.apply_deposit(&over).unwrap_err();
    assert_eq!(rejection, Rejection::BalanceOverflow);
    assert_eq!(
        DepositRefusal::of(rejection),
        Some(DepositRefusal::BalanceOverflow)
    );
    let before = l.clone();
    // Out of order: refused as an error, nothing changes.
    let skipped = Deposit {
        queue_index: 2,
        ..over.clone()
    };
    assert_eq!(
        l.refuse_deposit(&skipped),
        Err(Rejection::DepositOutOfOrder { expected: 1 })
    );
    assert_eq!(l, before);
    l.refuse_deposit(&over).unwrap();
    assert_eq!(l.deposits_consumed(), 2);
    assert_eq!(l.balance(addr(0), token(0)), Amount(BALANCE_MAX));
    assert_eq!(l.supply(token(0)).unwrap().deposited, Amount(BALANCE_MAX));
    assert_eq!(l.slot_count(), 1);
    l.check_supply().unwrap();
    // The refusal is consumed once: the same deposit again is out of order.
    assert_eq!(
        l.refuse_deposit(&over),
        Err(Rejection::DepositOutOfOrder { expected: 2 })
    );
    // The queue goes on.
    deposit(&mut l, addr(1), token(0), 5);
    assert_eq!(l.deposits_consumed(), 3);
}

#[test]
fn only_final_deposit_rejections_are_refusals() {
    for (rejection, refusal) in [
        (
            Rejection::UnsupportedToken,
            Some(DepositRefusal::UnsupportedToken),
        ),
        (Rejection::ZeroAmount, Some(DepositRefusal::ZeroAmount)),
        (
            Rejection::AmountOverflow,
            Some(DepositRefusal::AmountOverflow),
        ),
        (
            Rejection::BalanceOverflow,
            Some(DepositRefusal::BalanceOverflow),
        ),
        (
            Rejection::SlotLimitReached,
            Some(DepositRefusal::SlotLimitReached),
        ),
        (Rejection::DepositOutOfOrder { expected: 3 }, None),
        (Rejection::UnknownAccount, None),
        (Rejection::SupplyMismatch, None),
    ] {
        assert_eq!(DepositRefusal::of(rejection), refusal, "{rejection:?}");
    }
    // Each refusal a deposit in order can meet, from the ledger itself.
    let mut l = Ledger::new(LedgerConfig {
        slots_max: 1,
        ..ledger().config().clone()
    });
    deposit(&mut l, addr(0), token(0), 1);
    let d = |recipient, tok, amount| Deposit {
        queue_index: 1,
        recipient,
        token: tok,
        amount: Amount(amount),
    };
    let refusal = |l: &mut Ledger, d: Deposit| DepositRefusal::of(l.apply_deposit(&d).unwrap_err());
    assert_eq!(
        refusal(&mut l, d(addr(0), token(9), 1)),
        Some(DepositRefusal::UnsupportedToken)
    );
    assert_eq!(
        refusal(&mut l, d(addr(1), token(0), 1)),
        Some(DepositRefusal::SlotLimitReached)
    );
    assert_eq!(
        refusal(&mut l, d(addr(0), token(0), BALANCE_MAX)),
        Some(DepositRefusal::BalanceOverflow)
    );
}
