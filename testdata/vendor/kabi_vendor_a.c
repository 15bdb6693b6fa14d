// SPDX-License-Identifier: GPL-2.0
/*
 * kabi_vendor_a: a stand-in for a vendor's out-of-tree driver (kabi's weak-modules tests).
 *
 * It imports a handful of common kernel exports (kmalloc_trace/__kmalloc, kfree, _printk,
 * msleep, __pci_register_driver, pci_unregister_driver, param_ops_uint), carries a PCI
 * alias for a device nobody has, a parameter, and exports one GPL function that
 * kabi_vendor_b uses. Loading it is harmless: it registers a PCI driver that binds nothing.
 */
#include <linux/delay.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>

static unsigned int bufsize = 64;
module_param(bufsize, uint, 0444);
MODULE_PARM_DESC(bufsize, "size of the greeting buffer");

struct kabi_vendor_a_state {
	unsigned int calls;
	char *buf;
};

static struct kabi_vendor_a_state *state;

int kabi_vendor_a_hello(const char *who)
{
	state->calls++;
	snprintf(state->buf, bufsize, "hello %s", who);
	pr_info("kabi_vendor_a: %s (%u)\n", state->buf, state->calls);
	return state->calls;
}
EXPORT_SYMBOL_GPL(kabi_vendor_a_hello);

static const struct pci_device_id kabi_vendor_a_ids[] = {
	{ PCI_DEVICE(0x1234, 0xabcd) },
	{ }
};
MODULE_DEVICE_TABLE(pci, kabi_vendor_a_ids);

static int kabi_vendor_a_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	return -ENODEV;
}

static struct pci_driver kabi_vendor_a_driver = {
	.name = "kabi_vendor_a",
	.id_table = kabi_vendor_a_ids,
	.probe = kabi_vendor_a_probe,
};

static int __init kabi_vendor_a_init(void)
{
	int err;

	state = kzalloc(sizeof(*state), GFP_KERNEL);	/* constant size: kmalloc_trace */
	if (!state)
		return -ENOMEM;
	state->buf = kmalloc(bufsize ? bufsize : 1, GFP_KERNEL);	/* variable: __kmalloc */
	if (!state->buf) {
		kfree(state);
		return -ENOMEM;
	}
	msleep(1);
	err = pci_register_driver(&kabi_vendor_a_driver);
	if (err) {
		kfree(state->buf);
		kfree(state);
		return err;
	}
	pr_info("kabi_vendor_a: loaded\n");
	return 0;
}

static void __exit kabi_vendor_a_exit(void)
{
	pci_unregister_driver(&kabi_vendor_a_driver);
	kfree(state->buf);
	kfree(state);
}

module_init(kabi_vendor_a_init);
module_exit(kabi_vendor_a_exit);

MODULE_LICENSE("GPL");
MODULE_ALIAS("kabi-vendor-a");
MODULE_DESCRIPTION("kabi test fixture: a vendor driver exporting kabi_vendor_a_hello");
MODULE_AUTHOR("kabi tests");
MODULE_VERSION("1.0");
