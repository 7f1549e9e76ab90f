// SPDX-License-Identifier: GPL-2.0
int a_one;
int a_two;
int a_three;
