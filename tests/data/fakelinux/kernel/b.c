// SPDX-License-Identifier: GPL-2.0
int b_one;
int b_two; // w1-warning: b_two is old
int b_three;
