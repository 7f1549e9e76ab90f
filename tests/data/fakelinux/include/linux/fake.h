/* SPDX-License-Identifier: GPL-2.0 */
#define FAKE_ONE 1
#define FAKE_TWO 2
#define FAKE_THREE 3
